"""Assertions shared by the API tests (``from integration.services.api.helpers import ...``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import Alert, AlertRule


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an error in the one format; returns its ``error`` object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], list)
    if code is not None:
        assert err["code"] == code, err
    return dict(err)


async def insert_rule(sessions: async_sessionmaker[AsyncSession], name: str) -> int:
    """A minimal alert rule row; returns its id."""
    async with sessions.begin() as session:
        rule = AlertRule(
            name=name,
            stream="news",
            scope={"entities": ["_all"]},
            window_s=300,
            min_volume=1,
            abs_threshold=0.5,
            z_threshold=1.0,
            baseline="ewma",
            severity="warning",
            cooldown_s=60,
            resolve_after_s=60,
            channels=[],
        )
        session.add(rule)
        await session.flush()
        return rule.id


async def insert_alert(
    sessions: async_sessionmaker[AsyncSession],
    *,
    alert_id: str,
    rule_id: int,
    entity: str,
    at: datetime,
    status: str = "open",
    explanation: dict[str, Any] | None = None,
    stream: str = "news",
) -> None:
    """An alert row as the alerter would write it."""
    from datetime import timedelta

    async with sessions.begin() as session:
        session.add(
            Alert(
                id=alert_id,
                rule_id=rule_id,
                entity=entity,
                stream=stream,
                episode=at,
                status=status,
                severity="critical",
                window_start=at - timedelta(minutes=5),
                window_end=at,
                fired_at=at,
                explanation=explanation or {"negative_share": 0.8, "top_messages": [], "top_terms": []},
                model_version="test-1",
            )
        )


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free localhost port; yields the base URL."""
    import asyncio

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not server.started:
        if task.done():
            task.result()
        assert loop.time() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass(frozen=True)
class Event:
    """One server-sent event of ``/v1/alerts/stream``."""

    id: str | None  # None: no id field
    event: str
    data: dict[str, Any]


async def next_event(lines: AsyncIterator[str]) -> Event:
    """The next event read from a stream's lines (``Response.aiter_lines()``)."""
    event_id, event, data = None, "", ""
    async for line in lines:
        if line.startswith("id:"):
            event_id = line[3:].removeprefix(" ")
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and event:
            return Event(event_id, event, json.loads(data))
    raise AssertionError("stream ended")


async def sse_event(lines: AsyncIterator[str]) -> tuple[str, dict[str, Any]]:
    """The next event's name and data."""
    e = await next_event(lines)
    return e.event, e.data


async def read_cancelled_by_an_operator(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> httpx.Response:
    """``GET /v1/alerts`` while another session holds the alerts table locked, its statement
    cancelled by ``pg_cancel_backend`` as it waits (SQLSTATE 57014, as a statement timeout):
    the API's answer."""
    async with sessions() as locker, sessions() as admin:
        await locker.execute(text("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE"))
        locker_pid = (await locker.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        try:
            request = asyncio.create_task(client.get("/v1/alerts"))
            cancelled = False
            for _ in range(200):  # the request's statement, waiting for the lock
                cancelled = bool(
                    (
                        await admin.execute(
                            text(
                                "SELECT bool_or(pg_cancel_backend(pid)) FROM pg_stat_activity"
                                " WHERE :locker = ANY(pg_blocking_pids(pid))"
                            ),
                            {"locker": locker_pid},
                        )
                    ).scalar_one()
                )
                await admin.rollback()
                if cancelled or request.done():
                    break
                await asyncio.sleep(0.05)
            assert cancelled, "the read never waited for the lock"
            r = await asyncio.wait_for(request, 10)
        finally:
            await locker.rollback()
    return r
