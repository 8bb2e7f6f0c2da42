"""Fixtures for the alerter scenarios: a real local webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from alert_scenario import Hook


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
            "TW_ALERTER_SWEEP_INTERVAL_S": "5",
            **extra,
        }

    return make
