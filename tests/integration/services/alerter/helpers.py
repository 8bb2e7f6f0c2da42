"""Helpers shared by the alerter tests (``from integration.services.alerter.helpers import ...``);
the fixtures are in conftest.py."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from services_proc import log_tail

from shared.events import AlertEvent

AT = datetime(2031, 3, 9, 14, 30, tzinfo=UTC)


def alert() -> AlertEvent:
    """A new open alert event (a fresh id each call), fired at ``AT``."""
    return AlertEvent(
        id=f"al-{uuid.uuid4().hex[:12]}",
        rule_id=7,
        rule_name="watchlist-negative-spike",
        entity="ACME",
        stream="news",
        severity="critical",
        status="open",
        window_start=AT,
        window_end=AT,
        fired_at=AT,
        explanation={"share": 0.62},
    )


@contextlib.contextmanager
def showing_logs(log_dir: Path, *names: str) -> Iterator[None]:
    """A failed assertion (a ``wait_until`` that ran out) in the block fails the test with
    the tails of these services' logs instead."""
    try:
        yield
    except AssertionError:
        raise AssertionError("".join(log_tail(log_dir, name) for name in names)) from None


@contextlib.asynccontextmanager
async def posts_served(handle: Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[str]:
    """A real local HTTP receiver: ``handle`` answers every POST to ``/<name>`` on
    127.0.0.1 (a free port); yields the base URL."""
    app = web.Application()
    app.router.add_post("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()
