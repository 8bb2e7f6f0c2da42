"""Retention removes the message texts that alert explanations quote from the scored
events it deletes: the alert, its numbers, terms and example ids, times and scores stay.
An alert already stripped is not written again (its row version stays)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from integration.services.api.helpers import insert_alert, insert_rule
from services_proc import log_tail, running
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tw_testing import wait_until

from services.aggregator.config import AggregatorSettings
from services.aggregator.persist import strip_alert_texts
from services.alerter.explain import TEXT_REMOVED
from shared.db.models import Alert

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)


def explanation(tag: str) -> dict[str, Any]:
    """The shape the alerter writes."""
    return {
        "share": 0.8,
        "volume": 20,
        "z": 3.1,
        "top_messages": [
            {"id": f"{tag}-m1", "text": f"{tag}: my card was charged twice", "negative_prob": 0.97,
             "event_time": "2026-01-01T10:00:00+00:00"},
            {"id": f"{tag}-m2", "text": f"{tag}: still no refund", "negative_prob": 0.91,
             "event_time": "2026-01-01T10:01:00+00:00"},
        ],
        "top_terms": [{"term": "refund", "window": 4, "baseline": 0, "z": 2.5}],
        "model_version": "test-1",
    }  # fmt: skip


def stripped(tag: str) -> dict[str, Any]:
    e = explanation(tag)
    return e | {
        "top_messages": [m | {"text": TEXT_REMOVED} for m in e["top_messages"]],
        "texts_removed": "retention",
    }


async def add_alert(sessions: async_sessionmaker[AsyncSession], rule_id: int, aid: str, at: datetime) -> None:
    await insert_alert(sessions, alert_id=aid, rule_id=rule_id, entity=aid, at=at, explanation=explanation(aid))


async def explanation_of(sessions: async_sessionmaker[AsyncSession], aid: str) -> dict[str, Any]:
    async with sessions() as s:
        return dict((await s.execute(select(Alert.explanation).where(Alert.id == aid))).scalar_one())


async def row_version(sessions: async_sessionmaker[AsyncSession], aid: str) -> tuple[str, str]:
    """(xmin, changed_xid): xmin changes on every write of the row, changed_xid when the feed re-sends it."""
    async with sessions() as s:
        q = text("SELECT xmin::text, changed_xid::text FROM alerts WHERE id = :id")
        row = (await s.execute(q, {"id": aid})).one()
    return str(row[0]), str(row[1])


async def test_the_retention_run_strips_the_texts_of_alerts_older_than_the_scored_events(
    service_settings: Callable[..., Any], sessions: async_sessionmaker[AsyncSession], tmp_path: Path, unique: str
) -> None:
    """The aggregator's retention task: a chat message deleted from ``scored_events`` after
    the retention lived on in full in the explanation of every alert that quoted it."""
    settings: AggregatorSettings = service_settings(AggregatorSettings)
    now = datetime.now(UTC)
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    old, recent, later = f"old-{unique}", f"recent-{unique}", f"later-{unique}"
    await add_alert(sessions, rule_id, old, now - 9 * DAY)
    await add_alert(sessions, rule_id, recent, now - 5 * DAY)
    env = {
        "TW_AGGREGATOR_GROUP_ID": f"agg-{unique}",
        "TW_AGGREGATOR_SCORED_RETENTION_DAYS": "7",
        "TW_AGGREGATOR_RETENTION_INTERVAL_S": "0.5",
    }
    with running("aggregator", settings, tmp_path, **env):

        async def is_stripped(aid: str) -> bool:
            return "texts_removed" in await explanation_of(sessions, aid)

        await wait_until(lambda: is_stripped(old), timeout=60)
        first = await row_version(sessions, old)
        # a later old alert is stripped by a later run, which leaves the first one alone
        await add_alert(sessions, rule_id, later, now - 8 * DAY)
        await wait_until(lambda: is_stripped(later), timeout=30)
        assert await row_version(sessions, old) == first
    assert await explanation_of(sessions, old) == stripped(old)
    assert await explanation_of(sessions, recent) == explanation(recent)
    assert "removed the message texts of" in log_tail(tmp_path, "aggregator", 200_000)


async def test_strip_walks_the_alerts_in_chunks_and_writes_each_once(
    sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    now = datetime.now(UTC)
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    olds = [f"old{i}-{unique}" for i in range(3)]
    for aid in olds:
        await add_alert(sessions, rule_id, aid, now - 30 * DAY)
    await add_alert(sessions, rule_id, f"recent-{unique}", now - DAY)
    # an alert that fired before its window ended (events ahead of the clock) goes by fired_at
    ahead = f"ahead-{unique}"
    await add_alert(sessions, rule_id, ahead, now + DAY)
    async with sessions.begin() as s:
        await s.execute(text("UPDATE alerts SET fired_at = :t WHERE id = :id"), {"t": now - 30 * DAY, "id": ahead})
    # a backfill: old events, scored and stored (and the alert fired) yesterday
    backfill = f"backfill-{unique}"
    await add_alert(sessions, rule_id, backfill, now - 30 * DAY)
    async with sessions.begin() as s:
        await s.execute(text("UPDATE alerts SET fired_at = :t WHERE id = :id"), {"t": now - DAY, "id": backfill})
    before = {aid: await row_version(sessions, aid) for aid in [*olds, ahead]}

    assert await strip_alert_texts(sessions, cutoff=now - 7 * DAY, chunk=1) >= 4
    for aid in [*olds, ahead]:
        assert await explanation_of(sessions, aid) == stripped(aid)
        xmin, changed = await row_version(sessions, aid)
        assert xmin != before[aid][0] and changed == before[aid][1]  # written; not re-sent on the feed
    assert await explanation_of(sessions, f"recent-{unique}") == explanation(f"recent-{unique}")
    assert await explanation_of(sessions, backfill) == explanation(backfill)

    after = {aid: await row_version(sessions, aid) for aid in [*olds, ahead]}
    assert await strip_alert_texts(sessions, cutoff=now - 7 * DAY, chunk=2) == 0
    assert {aid: await row_version(sessions, aid) for aid in [*olds, ahead]} == after
