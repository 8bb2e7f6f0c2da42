"""``GET /v1/alerts/stream`` resumes: event ids are cursors (transaction ids), and a client
that reconnects with ``Last-Event-ID`` (an EventSource does by itself) gets what changed
in the gap, or a ``resync`` when that cannot be sent one by one, never a snapshot of the
newest 50 that silently leaves out an older alert changed meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from integration.services.api.helpers import Event, insert_alert, insert_rule, next_event, serving
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import alert_feed
from services.api.app import build_app
from services.api.config import ApiSettings
from services.api.deps import Deps
from shared.db.models import Alert

pytestmark = pytest.mark.integration
LONG_AGO = datetime(1950, 1, 2, 3, 4, tzinfo=UTC)  # older than any snapshot's newest 50


async def _first(url: str, last_event_id: str | None = None) -> tuple[Event, list[str] | None]:
    """The first event of a new connection, and the lines after it once the stream ends
    (None when it is still open after a second)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    async with (
        httpx.AsyncClient(base_url=url, timeout=10) as c,
        c.stream("GET", "/v1/alerts/stream", headers=headers) as r,
    ):
        assert r.status_code == 200
        lines = r.aiter_lines()
        first = await asyncio.wait_for(next_event(lines), 10)
        try:
            rest = await asyncio.wait_for(_drain(lines), 1)
        except TimeoutError:
            rest = None
    return first, rest


async def _drain(lines: AsyncIterator[str]) -> list[str]:
    return [line async for line in lines]


async def test_a_reconnection_gets_what_changed_in_the_gap(
    api_settings: ApiSettings, deps: Deps, sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """An old alert (beyond any snapshot's newest 50) resolved, and a new one fired, while the
    client was away: resuming from the last event's id sends both as ``alert`` events, with
    no snapshot; the ids are numbers that never go back, and the stream stays live."""
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    old, gap, live, after = (f"{kind}-{unique}" for kind in ("old", "gap", "live", "after"))
    await insert_alert(sessions, alert_id=old, rule_id=rule_id, entity="resume", at=LONG_AGO)
    app = build_app(api_settings, deps)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as c:
        async with c.stream("GET", "/v1/alerts/stream") as response:
            lines = response.aiter_lines()
            snapshot = await asyncio.wait_for(next_event(lines), 10)
            assert snapshot.event == "snapshot" and snapshot.id is not None and snapshot.id.isdigit()
            await insert_alert(
                sessions, alert_id=live, rule_id=rule_id, entity="resume", at=LONG_AGO + timedelta(days=1)
            )
            sent = await asyncio.wait_for(next_event(lines), 10)
            assert (sent.event, sent.data["id"]) == ("alert", live)
            assert sent.id is not None and int(sent.id) >= int(snapshot.id)

        async with sessions.begin() as s:  # the gap
            await s.execute(update(Alert).where(Alert.id == old).values(status="resolved"))
        await insert_alert(sessions, alert_id=gap, rule_id=rule_id, entity="resume", at=LONG_AGO + timedelta(days=2))

        async with c.stream("GET", "/v1/alerts/stream", headers={"Last-Event-ID": sent.id}) as response:
            lines = response.aiter_lines()
            got: dict[str, str] = {}
            last_id = int(sent.id)
            while not {old, gap} <= set(got):
                event = await asyncio.wait_for(next_event(lines), 10)
                assert event.event == "alert", event  # no snapshot: only the changes
                assert event.id is not None and int(event.id) >= last_id
                last_id = int(event.id)
                got[event.data["id"]] = event.data["status"]
            assert (got[old], got[gap]) == ("resolved", "open")
            await insert_alert(
                sessions, alert_id=after, rule_id=rule_id, entity="resume", at=LONG_AGO + timedelta(days=3)
            )
            while (event := await asyncio.wait_for(next_event(lines), 10)).data["id"] != after:
                assert event.data["id"] in got  # a change of the gap sent again at most
            assert event.id is not None and int(event.id) >= last_id


async def test_a_gap_too_large_to_send_one_by_one_resyncs(
    api_settings: ApiSettings,
    deps: Deps,
    sessions: async_sessionmaker[AsyncSession],
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More changes in the gap than the feed sends one by one: ``resync`` with the reason,
    and an empty id, so the client's next connection (an EventSource's own) gets a snapshot."""
    monkeypatch.setattr(alert_feed, "POLL_MAX_ALERTS", 3)
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    app = build_app(api_settings, deps)
    async with serving(app) as url:
        snapshot, _ = await _first(url)
        assert snapshot.event == "snapshot" and snapshot.id is not None
        for n in range(4):
            at = LONG_AGO + timedelta(minutes=n)
            await insert_alert(sessions, alert_id=f"many-{unique}-{n}", rule_id=rule_id, entity="many", at=at)
        resync, rest = await _first(url, snapshot.id)
        assert (resync.event, resync.data, resync.id) == ("resync", {"reason": "too_many_changes"}, "")
        assert rest is not None and not [line for line in rest if line.startswith("event:")]  # then it ends
        again, _ = await _first(url, "")
        assert again.event == "snapshot"


@pytest.mark.parametrize(
    ("last_event_id", "reason"),
    [
        ("abc", "invalid_last_event_id"),
        ("-1", "invalid_last_event_id"),
        ("12345678901234567890", "invalid_last_event_id"),
        ("9000000000000000000", "database_reset"),  # above every transaction id: another database's
    ],
)
async def test_an_id_it_cannot_resume_from_resyncs(
    api_settings: ApiSettings, deps: Deps, last_event_id: str, reason: str
) -> None:
    app = build_app(api_settings, deps)
    async with serving(app) as url:
        resync, rest = await _first(url, last_event_id)
    assert (resync.event, resync.data, resync.id) == ("resync", {"reason": reason}, "")
    assert rest is not None and not [line for line in rest if line.startswith("event:")]  # then it ends
