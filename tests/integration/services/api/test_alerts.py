"""Alerts: listing, ack/resolve transitions, and the live SSE feed on a real server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from integration.services.api.helpers import assert_error, bearer, insert_alert, insert_rule, serving, sse_event
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import alert_feed, auth
from services.api.app import build_app
from services.api.config import ApiSettings
from services.api.deps import Deps, make_deps
from shared.db.models import Alert

pytestmark = pytest.mark.integration
NOW = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)


@pytest.fixture
async def alert_id(sessions: async_sessionmaker[AsyncSession], unique: str) -> str:
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    aid = f"al-{unique}"
    await insert_alert(
        sessions,
        alert_id=aid,
        rule_id=rule_id,
        entity=f"e{unique}",
        at=NOW,
        explanation={
            "top_messages": [{"id": "m1", "text": "bad news", "negative_prob": 0.97}],
            "top_terms": [["slump", 3.2]],
        },
    )
    return aid


async def test_list_filters(client: httpx.AsyncClient, alert_id: str, unique: str) -> None:
    r = await client.get("/v1/alerts", params={"entity": f"e{unique}"})
    (alert,) = r.json()
    assert alert["id"] == alert_id and alert["status"] == "open" and alert["rule_name"] == f"rule-{unique}"
    assert alert["explanation"]["top_messages"][0]["text"] == "bad news"
    assert (await client.get("/v1/alerts", params={"entity": f"e{unique}", "status": "resolved"})).json() == []
    assert_error(await client.get("/v1/alerts", params={"status": "closed"}), 422)


async def test_one_alert_by_id(client: httpx.AsyncClient, alert_id: str, unique: str) -> None:
    r = await client.get(f"/v1/alerts/{alert_id}")
    assert r.status_code == 200, r.text
    alert = r.json()
    assert alert["id"] == alert_id and alert["rule_name"] == f"rule-{unique}" and alert["entity"] == f"e{unique}"
    assert alert["explanation"]["top_messages"][0]["text"] == "bad news"
    assert_error(await client.get("/v1/alerts/al-nope"), 404, "not_found")
    assert_error(await client.get(f"/v1/alerts/{'x' * 65}"), 422)


async def test_ack_then_resolve(client: httpx.AsyncClient, alert_id: str, keys: dict[str, str]) -> None:
    auth = bearer(keys["write"])
    r = await client.post(f"/v1/alerts/{alert_id}/ack", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged" and r.json()["acknowledged_at"] is not None
    err = assert_error(await client.post(f"/v1/alerts/{alert_id}/ack", headers=auth), 409, "invalid_transition")
    assert err["details"][0]["status"] == "acknowledged"
    r = await client.post(f"/v1/alerts/{alert_id}/resolve", headers=auth)
    assert r.json()["status"] == "resolved" and r.json()["resolved_at"] is not None
    assert r.json()["acknowledged_at"] is not None
    assert_error(await client.post(f"/v1/alerts/{alert_id}/resolve", headers=auth), 409, "invalid_transition")
    assert_error(await client.post(f"/v1/alerts/{alert_id}/ack", headers=auth), 409)


async def test_resolve_open_alert_and_unknown(client: httpx.AsyncClient, alert_id: str, keys: dict[str, str]) -> None:
    auth = bearer(keys["write"])
    r = await client.post(f"/v1/alerts/{alert_id}/resolve", headers=auth)
    assert r.json()["status"] == "resolved" and r.json()["acknowledged_at"] is None
    assert_error(await client.post("/v1/alerts/nope/ack", headers=auth), 404, "not_found")
    assert_error(await client.post(f"/v1/alerts/{alert_id}/ack", headers=bearer(keys["read"])), 403)
    assert_error(await client.post(f"/v1/alerts/{alert_id}/ack"), 401)


async def test_stream_pushes_new_and_changed_alerts(
    api_settings: ApiSettings, deps: Deps, sessions: async_sessionmaker[AsyncSession], alert_id: str, unique: str
) -> None:
    app = build_app(api_settings, deps)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as c:
        async with c.stream("GET", "/v1/alerts/stream") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            event, data = await asyncio.wait_for(sse_event(lines), 10)
            assert event == "snapshot" and alert_id in [a["id"] for a in data["alerts"]]
            rule_id = data["alerts"][0]["rule_id"]
            await insert_alert(
                sessions, alert_id=f"new-{unique}", rule_id=rule_id, entity="x", at=NOW - timedelta(days=900)
            )
            event, data = await asyncio.wait_for(sse_event(lines), 10)
            assert (event, data["id"], data["status"]) == ("alert", f"new-{unique}", "open")
            async with sessions.begin() as s:
                await s.execute(update(Alert).where(Alert.id == alert_id).values(status="resolved"))
            event, data = await asyncio.wait_for(sse_event(lines), 10)
            assert (event, data["id"], data["status"]) == ("alert", alert_id, "resolved")

        # The client left: the server ends its subscription, and the poller stops with the last one.
        for _ in range(100):
            if app.state.feed.subscribers == 0:
                break
            await asyncio.sleep(0.05)
        assert app.state.feed.subscribers == 0


async def test_stream_answers_503_when_postgres_is_unreachable(api_settings: ApiSettings) -> None:
    """The subscription and snapshot come before the first byte: 503 with Retry-After like
    every other route, not a 200 cut off when the first query fails. PostgreSQL is
    "down" for this app only: it points at a port that refuses connections."""
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = refusing.getsockname()[1]
        url = f"postgresql+asyncpg://tonewatch:tonewatch@127.0.0.1:{port}/tonewatch"
        down = api_settings.model_copy(
            update={"postgres": api_settings.postgres.model_copy(update={"url": SecretStr(url)})}
        )
        deps = make_deps(down)
        app = build_app(down, deps)
        try:
            async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as c:
                responses = [await c.get("/v1/alerts/stream") for _ in range(2)]
        finally:
            await deps.aclose()
    for response in responses:
        err = assert_error(response, 503, "dependency_unavailable")
        assert response.headers["Retry-After"] == "5"
        assert str(port) not in err["message"]
    assert app.state.feed.subscribers == 0


async def test_a_stream_ends_when_its_key_is_revoked(api_settings: ApiSettings, deps: Deps) -> None:
    """With keys required for reads, the key is checked again at each heartbeat: a revoked
    key's stream ends instead of delivering alerts for ever."""
    settings = api_settings.model_copy(update={"require_key_for_reads": True, "sse_heartbeat_s": 0.2})
    new = await auth.create_key(deps.sessions, "stream-reader", "read")
    app = build_app(settings, deps)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as c:
        async with c.stream("GET", "/v1/alerts/stream", headers=bearer(new.key)) as response:
            assert response.status_code == 200
            lines = response.aiter_lines()
            event, _ = await asyncio.wait_for(sse_event(lines), 10)
            assert event == "snapshot"
            await asyncio.sleep(0.5)  # a few heartbeats with a valid key: still open
            await auth.revoke_key(deps.sessions, new.info.prefix)

            async def drain() -> None:
                async for _ in lines:
                    pass

            await asyncio.wait_for(drain(), 10)  # the server ended the response
        assert_error(await c.get("/v1/alerts/stream", headers=bearer(new.key)), 401)


async def test_a_busy_stream_ends_when_its_key_is_revoked(
    api_settings: ApiSettings, deps: Deps, sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """Alerts change faster than the heartbeat, so the stream never idles: the key is still
    checked every heartbeat interval, and the stream ends within about one once revoked."""
    heartbeat = api_settings.sse_heartbeat_s
    settings = api_settings.model_copy(update={"require_key_for_reads": True})
    new = await auth.create_key(deps.sessions, "busy-reader", "read")
    rule_id = await insert_rule(sessions, f"rule-{unique}")

    async def keep_alerting() -> None:
        for n in range(10_000):
            at = NOW - timedelta(days=900, minutes=n)
            await insert_alert(sessions, alert_id=f"busy-{unique}-{n}", rule_id=rule_id, entity="busy", at=at)
            await asyncio.sleep(heartbeat / 10)

    app = build_app(settings, deps)
    writer = asyncio.create_task(keep_alerting())
    try:
        async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as c:
            async with c.stream("GET", "/v1/alerts/stream", headers=bearer(new.key)) as response:
                assert response.status_code == 200
                lines = response.aiter_lines()
                assert (await asyncio.wait_for(sse_event(lines), 10))[0] == "snapshot"
                loop = asyncio.get_running_loop()
                started = loop.time()
                while loop.time() - started < 2 * heartbeat:  # alerts flow, the valid key passes its checks
                    event, _ = await asyncio.wait_for(sse_event(lines), heartbeat)
                    assert event == "alert"
                await auth.revoke_key(deps.sessions, new.info.prefix)
                revoked = loop.time()

                async def drain() -> None:
                    async for _ in lines:
                        pass

                await asyncio.wait_for(drain(), 2 * heartbeat + 1)
                assert loop.time() - revoked < heartbeat + 1  # one check interval, plus a poll
    finally:
        # Awaited, not only cancelled: a writer cancelled mid-transaction hands its
        # connection back after the `sessions` fixture disposed of the engine; it is then
        # never closed, and its ResourceWarning fails whichever later test the GC hits.
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


async def test_a_stream_resyncs_after_a_bulk_change(
    api_settings: ApiSettings,
    deps: Deps,
    sessions: async_sessionmaker[AsyncSession],
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More alerts changed in one poll than it sends one by one: the stream says ``resync``
    and ends (its EventSource reconnects and gets a new snapshot) instead of ending with
    no word, or queueing every change."""
    monkeypatch.setattr(alert_feed, "POLL_MAX_ALERTS", 3)
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    app = build_app(api_settings, deps)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as c:
        async with c.stream("GET", "/v1/alerts/stream") as response:
            lines = response.aiter_lines()
            assert (await asyncio.wait_for(sse_event(lines), 10))[0] == "snapshot"
            async with sessions.begin() as s:
                for n in range(4):
                    at = NOW - timedelta(days=900, minutes=n)
                    s.add(
                        Alert(
                            id=f"bulk-{unique}-{n}",
                            rule_id=rule_id,
                            entity="bulk",
                            stream="news",
                            episode=at,
                            status="open",
                            severity="warning",
                            window_start=at,
                            window_end=at,
                            fired_at=at,
                            explanation={},
                            model_version="test-1",
                        )
                    )
            event, data = await asyncio.wait_for(sse_event(lines), 10)
            assert (event, data) == ("resync", {"reason": "too_many_changes"})
            rest = [line async for line in lines]
            assert not [line for line in rest if line.startswith("event:")]  # then the stream ends
