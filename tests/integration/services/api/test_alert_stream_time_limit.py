"""``GET /v1/alerts/stream`` reads its opening (and the feed's baseline, when it starts the
feed) under the reads' time limit (``TW_API_READ_TIMEOUT_S``), before its first byte: a
slow database answers 503 ``query_timeout`` like every other read, where the stream hung.
The feed's polls that follow keep no limit: a stream already running waits out the lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from integration.services.api.helpers import assert_error, insert_alert, insert_rule, serving, sse_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.alert_feed import SNAPSHOT
from services.api.app import build_app
from services.api.config import ApiSettings
from services.api.deps import make_deps

pytestmark = pytest.mark.integration
AT = datetime(2031, 3, 4, 5, 6, tzinfo=UTC)


@pytest.fixture
async def url(api_settings: ApiSettings) -> AsyncIterator[str]:
    """A served app whose reads may take 0.3 s."""
    settings = api_settings.model_copy(update={"read_timeout_s": 0.3})
    deps = make_deps(settings)
    try:
        async with serving(build_app(settings, deps)) as base:
            yield base
    finally:
        await deps.aclose()


async def _until(lines: AsyncIterator[str], alert_id: str) -> None:
    """Read ``alert`` events until the one of ``alert_id``."""
    while True:
        event, data = await asyncio.wait_for(sse_event(lines), 10)
        if event == "alert" and data["id"] == alert_id:
            return


async def _xmin(sessions: async_sessionmaker[AsyncSession]) -> str:
    """A cursor the API could have given: the current snapshot's xmin."""
    async with sessions() as s:
        return str((await s.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())"))).scalar_one())


async def _slow_stream(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], resume: bool) -> None:
    """GET /v1/alerts/stream while another session locks ``alerts``: 503 query_timeout."""
    headers = {"Last-Event-ID": await _xmin(sessions)} if resume else {}
    async with sessions() as locker:
        await locker.execute(text("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE"))
        try:
            r = await asyncio.wait_for(client.get("/v1/alerts/stream", headers=headers), 10)
        finally:
            await locker.rollback()
    assert_error(r, 503, "query_timeout")
    assert r.headers["Retry-After"].isdigit(), r.headers


@pytest.mark.parametrize("resume", [False, True], ids=["snapshot", "last-event-id"])
async def test_a_stream_whose_first_read_is_too_slow_is_a_503_and_then_streams(
    url: str, sessions: async_sessionmaker[AsyncSession], unique: str, resume: bool
) -> None:
    """No stream open: the feed's baseline and the opening, held up by a lock past the
    limit, answer 503 query_timeout (the request hung until the lock went); once the lock
    is gone the same request streams: its opening, then the alerts fired after it."""
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        await _slow_stream(c, sessions, resume)
        headers = {"Last-Event-ID": await _xmin(sessions)} if resume else {}
        async with c.stream("GET", "/v1/alerts/stream", headers=headers) as r:
            assert r.status_code == 200
            lines = r.aiter_lines()
            if not resume:
                assert (await asyncio.wait_for(sse_event(lines), 10))[0] == "snapshot"
            await insert_alert(sessions, alert_id=f"after-{unique}", rule_id=rule_id, entity="slow", at=AT)
            await _until(lines, f"after-{unique}")


async def test_a_running_stream_waits_out_the_lock_while_a_new_one_is_a_503(
    url: str, sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """A stream already open keeps the feed running: a new stream's opening, held up past
    the limit, is a 503 query_timeout; the open stream's polls, which have no limit, wait
    for the lock and go on: the alert fired after it still reaches that stream."""
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    async with (
        httpx.AsyncClient(base_url=url, timeout=10) as c,
        c.stream("GET", "/v1/alerts/stream") as running,
    ):
        lines = running.aiter_lines()
        assert (await asyncio.wait_for(sse_event(lines), 10))[0] == "snapshot"
        await _slow_stream(c, sessions, resume=False)
        await insert_alert(sessions, alert_id=f"after-{unique}", rule_id=rule_id, entity="slow", at=AT)
        await _until(lines, f"after-{unique}")


async def test_a_limited_snapshot_read_is_repeatable_read_only_and_limited_and_leaves_nothing_behind(
    api_settings: ApiSettings,
) -> None:
    """``Deps.reads(SNAPSHOT)``, the stream's first read: the options apply to its
    transaction (set before it begins, not ignored), with the time limit; the pooled
    connection goes back to the defaults for the next read."""
    deps = make_deps(api_settings.model_copy(update={"read_timeout_s": 0.3}))
    show = text(
        "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only'),"
        " current_setting('statement_timeout')"
    )
    try:
        async with deps.reads(SNAPSHOT) as session:
            assert tuple((await session.execute(show)).one()) == ("repeatable read", "on", "300ms")
        async with deps.sessions() as session:
            isolation, read_only, _ = (await session.execute(show)).one()
        assert (isolation, read_only) == ("read committed", "off")
    finally:
        await deps.aclose()
