"""Trend retention (TW_AGGREGATOR_TREND_RETENTION_DAYS): the retention run deletes the
trend buckets older than the retention before their stream's newest minute (now, if that
is earlier), in chunks; 0, the default, keeps them all. Each test writes its own streams
(the column is free text), so the cutoffs of the other tests' streams do not matter."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from services_proc import log_tail, running
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tw_testing import wait_until

from services.aggregator.config import MIN_TREND_RETENTION_DAYS, AggregatorSettings
from services.aggregator.persist import TREND_CHUNK, expire_trends

pytestmark = pytest.mark.integration
DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
KEEP = timedelta(days=MIN_TREND_RETENTION_DAYS)  # 93 days
Row = tuple[str, datetime]  # (entity, bucket)

_INSERT = """
    INSERT INTO {table} (stream, entity, bucket, model_version, count, negative, neutral, positive,
        score_sum, confidence_sum)
    SELECT :stream, e, b, 'v1', 2, 1, 1, 0, -0.5, 1.6
    FROM unnest(CAST(:entities AS text[]), CAST(:buckets AS timestamptz[])) AS r(e, b)
"""


def a_minute_ago() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0) - MINUTE


def hour_of(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def stream_name(unique: str, tag: str) -> str:
    return f"{tag}{unique}"[:8]  # the column holds 8 characters


async def insert(sessions: async_sessionmaker[AsyncSession], table: str, stream: str, rows: Iterable[Row]) -> None:
    rows = list(rows)
    params = {"stream": stream, "entities": [e for e, _ in rows], "buckets": [b for _, b in rows]}
    async with sessions.begin() as s:
        await s.execute(text(_INSERT.format(table=table)), params)


async def kept(sessions: async_sessionmaker[AsyncSession], table: str, stream: str) -> set[Row]:
    async with sessions() as s:
        q = text(f"SELECT entity, bucket FROM {table} WHERE stream = :stream")
        return {(e, b) for e, b in await s.execute(q, {"stream": stream})}


async def test_old_buckets_go_and_the_newest_minutes_windows_stay(
    sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    newest = a_minute_ago()
    cutoff = newest - KEEP
    live = stream_name(unique, "l")
    minutes_kept = {("e", newest), ("e", newest - 92 * DAY), ("e", cutoff), ("f", cutoff)}
    minutes_gone = {("e", cutoff - MINUTE), ("f", cutoff - MINUTE), ("e", newest - 400 * DAY)}
    await insert(sessions, "trend_minute", live, minutes_kept | minutes_gone)
    # an hour bucket goes when all of it is older than the cutoff: the cutoff's hour stays
    hours_kept = {("e", hour_of(newest)), ("e", hour_of(cutoff))}
    hours_gone = {("e", hour_of(cutoff) - HOUR), ("e", hour_of(newest - 400 * DAY))}
    await insert(sessions, "trend_hour", live, hours_kept | hours_gone)

    # a stream replayed from older history goes by its own newest minute, not by now
    replayed = stream_name(unique, "r")
    replayed_newest = datetime(2020, 3, 1, 12, 0, tzinfo=UTC)
    replayed_kept = {("e", replayed_newest), ("e", replayed_newest - 30 * DAY), ("e", replayed_newest - KEEP)}
    replayed_gone = {("e", replayed_newest - KEEP - MINUTE), ("e", replayed_newest - 200 * DAY)}
    await insert(sessions, "trend_minute", replayed, replayed_kept | replayed_gone)

    # buckets ahead of the clock do not move the cutoff past now
    ahead = stream_name(unique, "a")
    ahead_kept = {("e", newest + 10 * DAY), ("e", newest - 92 * DAY)}
    ahead_gone = {("e", newest - 94 * DAY)}
    await insert(sessions, "trend_minute", ahead, ahead_kept | ahead_gone)

    deleted = await expire_trends(sessions, days=MIN_TREND_RETENTION_DAYS)

    assert await kept(sessions, "trend_minute", live) == minutes_kept
    assert await kept(sessions, "trend_hour", live) == hours_kept
    assert await kept(sessions, "trend_minute", replayed) == replayed_kept
    assert await kept(sessions, "trend_minute", ahead) == ahead_kept
    # other tests' streams may have had old buckets too
    assert deleted["trend_minute"] >= len(minutes_gone | replayed_gone | ahead_gone)
    assert deleted["trend_hour"] >= len(hours_gone)
    assert await expire_trends(sessions, days=MIN_TREND_RETENTION_DAYS) == {"trend_minute": 0, "trend_hour": 0}


async def test_zero_or_a_retention_past_the_calendar_keeps_every_bucket(
    sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    stream = stream_name(unique, "z")
    newest = a_minute_ago()
    minutes = {("e", newest), ("e", newest - 400 * DAY), ("e", newest - 4000 * DAY)}
    hours = {("e", hour_of(newest)), ("e", hour_of(newest - 4000 * DAY))}
    await insert(sessions, "trend_minute", stream, minutes)
    await insert(sessions, "trend_hour", stream, hours)
    # a cutoff before year 1, or within its first hour, cannot be written as a datetime
    to_year_one = (newest - datetime.min.replace(tzinfo=UTC)) / DAY
    nothing = {"trend_minute": 0, "trend_hour": 0}

    for days in (0, 1e12, to_year_one + 1, to_year_one - 0.01):
        assert await expire_trends(sessions, days=days) == nothing, days
    assert await kept(sessions, "trend_minute", stream) == minutes
    assert await kept(sessions, "trend_hour", stream) == hours


async def test_one_run_deletes_more_rows_than_one_chunk(
    sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    stream = stream_name(unique, "c")
    newest = a_minute_ago()
    old = newest - KEEP - DAY
    count = 2 * TREND_CHUNK + 5
    # 20 entities a minute: chunks end inside a minute, whose other rows the next one takes
    gone = {(f"e{i % 20}", old - (i // 20) * MINUTE) for i in range(count)}
    await insert(sessions, "trend_minute", stream, gone | {("e0", newest)})

    deleted = await expire_trends(sessions, days=MIN_TREND_RETENTION_DAYS)

    assert deleted["trend_minute"] >= count
    assert await kept(sessions, "trend_minute", stream) == {("e0", newest)}


async def test_a_run_stops_at_its_cap_and_the_next_runs_go_on(
    sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    stream = stream_name(unique, "k")
    newest = a_minute_ago()
    old = newest - KEEP - DAY
    gone = {(f"e{i}", old - m * MINUTE) for i in range(5) for m in range(5)}  # 25 rows, 5 a minute
    await insert(sessions, "trend_minute", stream, gone | {("e0", newest)})

    first = await expire_trends(sessions, days=MIN_TREND_RETENTION_DAYS, chunk=4, cap=10)
    assert sum(first.values()) == 10  # no more than the cap, though more are due
    runs = 1
    while sum((await expire_trends(sessions, days=MIN_TREND_RETENTION_DAYS, chunk=4, cap=10)).values()) == 10:
        runs += 1
        assert runs < 100
    assert await kept(sessions, "trend_minute", stream) == {("e0", newest)}


async def test_the_retention_run_deletes_trend_rows_only_when_set(
    service_settings: Callable[..., Any], sessions: async_sessionmaker[AsyncSession], tmp_path: Path, unique: str
) -> None:
    """The aggregator's retention task: by default (0) a run leaves the trend tables alone;
    with a retention set it deletes the old buckets and says how many."""
    settings: AggregatorSettings = service_settings(AggregatorSettings)
    stream = stream_name(unique, "s")
    newest = a_minute_ago()
    recent = {("e", newest), ("e", newest - 30 * DAY)}
    old = {("e", newest - 200 * DAY)}
    await insert(sessions, "trend_minute", stream, recent | old)
    await insert(sessions, "trend_hour", stream, {("e", hour_of(newest)), ("e", hour_of(newest - 200 * DAY))})
    env = {
        "TW_AGGREGATOR_GROUP_ID": f"agg-{unique}",
        "TW_AGGREGATOR_SCORED_RETENTION_DAYS": "7",
        "TW_AGGREGATOR_RETENTION_INTERVAL_S": "0.5",
    }

    def runs_logged() -> bool:
        return "retention: deleted" in log_tail(tmp_path, "aggregator", 1_000_000)

    async def add_expired_scored_event() -> None:
        """Something for the next run to delete, so that it logs (a run that deletes nothing is silent)."""
        async with sessions.begin() as s:
            await s.execute(
                text(
                    "INSERT INTO scored_events (id, stream, event_time, received_time, entities, text, sentiment, "
                    "sentiment_confidence, sentiment_score, negative_prob, model_version, created_at) "
                    "VALUES (:id, 'news', now(), now(), ARRAY['e'], 't', 'neutral', 0.9, 0, 0.1, 'v1', "
                    "now() - interval '30 days')"
                ),
                {"id": f"marker-{unique}"},
            )

    with running("aggregator", settings, tmp_path, **env):
        await add_expired_scored_event()
        await wait_until(runs_logged, timeout=60)  # logged at the end of a run
    assert await kept(sessions, "trend_minute", stream) == recent | old
    assert len(await kept(sessions, "trend_hour", stream)) == 2

    env["TW_AGGREGATOR_TREND_RETENTION_DAYS"] = str(MIN_TREND_RETENTION_DAYS)
    log_path = tmp_path / "aggregator.log"
    log_path.rename(tmp_path / "aggregator-default.log")
    with running("aggregator", settings, tmp_path, **env):

        async def old_gone() -> bool:
            return await kept(sessions, "trend_minute", stream) == recent

        await wait_until(old_gone, timeout=60)
        await wait_until(lambda: "trend rows" in log_tail(tmp_path, "aggregator", 1_000_000), timeout=30)
    assert await kept(sessions, "trend_hour", stream) == {("e", hour_of(newest))}
    assert "trend_minute" in log_tail(tmp_path, "aggregator", 1_000_000)
