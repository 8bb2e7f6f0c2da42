"""Fixtures for the alerter scenarios: a real local webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from alert_scenario import LOCAL_RECEIVERS, Hook
from sqlalchemy import update

from shared.db.models import AlertRule


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    h = Hook()

    async def handle(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        h.seen.append((name, await request.read(), dict(request.headers)))
        return web.Response(status=h.statuses.get(name, 200))

    app = web.Application()
    app.router.add_post("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    h.base = f"http://127.0.0.1:{port}"
    yield h
    await runner.cleanup()


@pytest.fixture
def alerter_env() -> Callable[..., dict[str, str]]:
    def make(unique: str, **extra: str) -> dict[str, str]:
        return {
            "TW_ALERTER_WEBHOOK_SECRET": "test-secret",
            "TW_ALERTER_WEBHOOK_BACKOFF_S": "0.2",
            "TW_ALERTER_WEBHOOK_TIMEOUT_S": "2",
            "TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS": LOCAL_RECEIVERS,  # the hook fixture's 127.0.0.1
            "TW_ALERTER_SWEEP_INTERVAL_S": "5",
            **extra,
        }

    return make


@pytest.fixture
async def only_rule(sessions: Any) -> AsyncIterator[Callable[[int], Awaitable[None]]]:
    """For the crash tests: a fail point such as ``after_alert_commit:1`` counts a firing
    of any rule, so every other enabled rule (the seeded defaults, rules other tests left
    behind) is disabled while the test runs, and enabled again after."""
    disabled: list[int] = []

    async def only(rule_id: int) -> None:
        async with sessions.begin() as s:
            ids = await s.execute(
                update(AlertRule)
                .where(AlertRule.id != rule_id, AlertRule.enabled.is_(True))
                .values(enabled=False)
                .returning(AlertRule.id)
            )
            disabled.extend(ids.scalars())

    yield only
    if disabled:
        async with sessions.begin() as s:
            await s.execute(update(AlertRule).where(AlertRule.id.in_(disabled)).values(enabled=True))
