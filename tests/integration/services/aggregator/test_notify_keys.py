"""The keys ``store_batch`` announces on ``NOTIFY tonewatch_buckets`` (what the alerter
evaluates at once): those of every bucket row it writes, hour rows included. A batch of late
events whose minutes are past the trend retention cutoff, but whose hour is not wholly past
it, writes only that hour row; it announced no key, and the alerter's sweep (which finds
changed keys by their hour rows) evaluated it only up to ``TW_ALERTER_SWEEP_INTERVAL_S`` later."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregator.config import MIN_TREND_RETENTION_DAYS
from services.aggregator.persist import NOTIFY_CHANNEL, store_batch
from shared.config import PostgresSettings
from shared.events import Score, ScoredEvent

pytestmark = pytest.mark.integration
DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)


def scored(event_id: str, entity: str, at: datetime) -> ScoredEvent:
    probs = {"negative": 0.8, "neutral": 0.1, "positive": 0.1}
    return ScoredEvent(
        id=event_id,
        stream="news",
        event_time=at,
        received_time=datetime.now(UTC),
        text="late",
        entities=[entity],
        sentiment=Score(label="negative", confidence=0.8, probs=probs, model="m", version="v1"),
    )


async def rows(sessions: async_sessionmaker[AsyncSession], table: str, entity: str) -> set[datetime]:
    async with sessions() as s:
        q = text(f"SELECT bucket FROM {table} WHERE stream = 'news' AND entity = :e")
        return set((await s.execute(q, {"e": entity})).scalars())


async def test_a_batch_writing_only_hour_rows_notifies_their_keys(
    sessions: async_sessionmaker[AsyncSession], pg_settings: PostgresSettings, unique: str
) -> None:
    entity, other = f"H{unique}", f"M{unique}"
    now = datetime.now(UTC).replace(second=0, microsecond=0) - MINUTE
    assert await store_batch(sessions, [scored(f"r-{unique}", entity, now)]) == 1  # the stream's clock: about now
    # a retention that puts the cutoff half an hour into an hour (the clock is at most a
    # minute after ``now``): a minute 10 minutes before it is past the cutoff, its hour is not
    middle = (now - MIN_TREND_RETENTION_DAYS * DAY - HOUR).replace(minute=30)
    days = MIN_TREND_RETENTION_DAYS + (now - MIN_TREND_RETENTION_DAYS * DAY - middle) / DAY
    late = scored(f"l-{unique}", entity, middle - 10 * MINUTE)

    # The channel is shared: other tests' batches (and their {"all": true}) may be heard too.
    # Only these two keys count, each announced by name; wait for both, up to a deadline.
    expected = {("news", entity, "v1"), ("news", other, "v1")}
    payloads: list[dict[str, Any]] = []
    url = pg_settings.url.get_secret_value().replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    try:
        await conn.add_listener(NOTIFY_CHANNEL, lambda _c, _p, _ch, payload: payloads.append(json.loads(payload)))
        assert await store_batch(sessions, [late], trend_retention_days=days) == 1
        # and a batch with minute rows, as before
        assert await store_batch(sessions, [scored(f"m-{unique}", other, now)], trend_retention_days=days) == 1
        deadline = asyncio.get_running_loop().time() + 10.0
        while not expected <= _announced(payloads) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await conn.close()

    hour = middle.replace(minute=0)
    assert await rows(sessions, "trend_minute", entity) == {now}  # the late minute is past the cutoff
    assert await rows(sessions, "trend_hour", entity) == {now.replace(minute=0), hour}  # its hour is written
    announced = _announced(payloads)
    assert ("news", entity, "v1") in announced
    assert ("news", other, "v1") in announced


def _announced(payloads: list[dict[str, Any]]) -> set[tuple[str, ...]]:
    """The keys announced by name ({"all": true} names none)."""
    return {tuple(k) for p in payloads for k in p.get("buckets", [])}
