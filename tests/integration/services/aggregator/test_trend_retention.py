"""Trend retention (TW_AGGREGATOR_TREND_RETENTION_DAYS): the retention run deletes the
trend buckets older than the retention before their stream's newest bucket in either table
(now, if that is earlier), in chunks; 0, the default, keeps them all; the aggregator does not
write the buckets of a late event past the cutoff. Each test writes its own streams (the
column is free text), so the cutoffs of the other tests' streams do not matter; the tests
through ``store_batch`` write the shared news and chat streams (a scored event's stream is
one of them) with entities of their own, and a recent event first, so the cutoff is near
``now - 93 days`` whatever the other tests wrote."""

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
from services.aggregator.persist import TREND_CHUNK, TooOld, expire_trends, store_batch
from shared.events import Score, ScoredEvent, Stream
from shared.kafka.clients import ensure_topics, make_producer

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


async def test_hour_rows_go_by_the_newest_hour_when_the_minute_rows_are_gone(
    sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """A stream whose minute rows are all gone (an earlier run, or only hour rows left) was
    never listed, as the streams and their clocks came from ``trend_minute`` only: its old
    hour rows stayed forever. Its newest hour's start is its clock; recent hours stay."""
    newest = hour_of(a_minute_ago())
    cutoff = newest - KEEP
    hours_only = stream_name(unique, "h")
    kept_hours = {("e", newest), ("e", newest - 92 * DAY), ("f", cutoff)}
    gone_hours = {("e", cutoff - HOUR), ("f", newest - 400 * DAY)}
    await insert(sessions, "trend_hour", hours_only, kept_hours | gone_hours)

    # replayed history with only hour rows left: by its own newest hour, not by now
    replayed = stream_name(unique, "p")
    replayed_newest = datetime(2020, 3, 1, 12, 0, tzinfo=UTC)
    replayed_kept = {("e", replayed_newest), ("e", replayed_newest - KEEP)}
    replayed_gone = {("e", replayed_newest - KEEP - HOUR), ("e", replayed_newest - 200 * DAY)}
    await insert(sessions, "trend_hour", replayed, replayed_kept | replayed_gone)

    # old minute rows under a recent hour: the stream's newest data is the hour's
    stale = stream_name(unique, "m")
    await insert(sessions, "trend_minute", stale, {("e", newest - 200 * DAY)})
    await insert(sessions, "trend_hour", stale, {("e", newest), ("e", hour_of(newest - 200 * DAY))})

    deleted = await expire_trends(sessions, days=MIN_TREND_RETENTION_DAYS)

    assert await kept(sessions, "trend_hour", hours_only) == kept_hours
    assert await kept(sessions, "trend_hour", replayed) == replayed_kept
    assert await kept(sessions, "trend_minute", stale) == set()
    assert await kept(sessions, "trend_hour", stale) == {("e", newest)}
    assert deleted["trend_hour"] >= len(gone_hours | replayed_gone) + 1
    assert await expire_trends(sessions, days=MIN_TREND_RETENTION_DAYS) == {"trend_minute": 0, "trend_hour": 0}


def scored(event_id: str, stream: Stream, entity: str, at: datetime) -> ScoredEvent:
    probs = {"negative": 0.8, "neutral": 0.1, "positive": 0.1}
    return ScoredEvent(
        id=event_id,
        stream=stream,
        event_time=at,
        received_time=datetime.now(UTC),
        text="late",
        entities=[entity],
        sentiment=Score(label="negative", confidence=0.8, probs=probs, model="m", version="v1"),
    )


async def ledger_has(sessions: async_sessionmaker[AsyncSession], ids: list[str]) -> set[str]:
    async with sessions() as s:
        q = text("SELECT id FROM counted_events WHERE id = ANY(CAST(:ids AS text[]))")
        return {str(i) for i in (await s.execute(q, {"ids": ids})).scalars()}


async def test_a_late_event_past_the_cutoff_is_counted_but_writes_no_bucket(
    sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """A late event older than the cutoff wrote a partial minute and hour bucket, which the
    next retention run deleted again (until then a bogus bucket in the trends). It is in the
    ledger all the same: a replay adds nothing, and nothing is counted twice."""
    entity = f"L{unique}"
    now = a_minute_ago() + 30 * timedelta(seconds=1)
    days = MIN_TREND_RETENTION_DAYS
    recent = scored(f"r-{unique}", "news", entity, now)
    assert await store_batch(sessions, [recent], trend_retention_days=days) == 1

    dropped: list[TooOld] = []
    late = scored(f"l-{unique}", "news", entity, now - 200 * DAY)
    kept_late = scored(f"k-{unique}", "news", entity, now - 30 * DAY)
    assert await store_batch(sessions, [late, kept_late], trend_retention_days=days, too_old=dropped.append) == 2

    minute = now.replace(second=0)
    assert {b for e, b in await kept(sessions, "trend_minute", "news") if e == entity} == {minute, minute - 30 * DAY}
    assert {b for e, b in await kept(sessions, "trend_hour", "news") if e == entity} == {
        hour_of(now),
        hour_of(now - 30 * DAY),
    }
    assert len(dropped) == 1 and dropped[0].keys() == {"news"}
    count, cutoff = dropped[0]["news"]
    assert count == 1 and now - KEEP - HOUR <= cutoff <= datetime.now(UTC) - KEEP
    all_ids = [recent.id, late.id, kept_late.id]
    assert await ledger_has(sessions, all_ids) == set(all_ids)
    # a replay adds nothing and writes nothing
    assert await store_batch(sessions, [late, kept_late, recent], trend_retention_days=days) == 0
    assert {b for e, b in await kept(sessions, "trend_minute", "news") if e == entity} == {minute, minute - 30 * DAY}

    # a batch is its own clock: its newest minute counts, as it will for the next run
    chat_entity = f"C{unique}"
    batch = [scored(f"c{i}-{unique}", "chat", chat_entity, now - i * 100 * DAY) for i in range(3)]
    assert await store_batch(sessions, batch, trend_retention_days=days) == 3
    assert {b for e, b in await kept(sessions, "trend_minute", "chat") if e == chat_entity} == {minute}
    assert {b for e, b in await kept(sessions, "trend_hour", "chat") if e == chat_entity} == {hour_of(now)}

    # retention off: written as before
    off = scored(f"o-{unique}", "news", entity, now - 300 * DAY)
    assert await store_batch(sessions, [off]) == 1
    assert (entity, (now - 300 * DAY).replace(second=0)) in await kept(sessions, "trend_minute", "news")


async def test_the_aggregator_drops_the_buckets_of_late_events_past_the_cutoff_and_says_so(
    service_settings: Callable[..., Any], sessions: async_sessionmaker[AsyncSession], tmp_path: Path, unique: str
) -> None:
    """The running aggregator with a trend retention: a late event is consumed and counted,
    no bucket of it is written, and the log says it was dropped as too old."""
    settings: AggregatorSettings = service_settings(AggregatorSettings)
    entity = f"A{unique}"
    now = a_minute_ago()
    events = [
        scored(f"a-{unique}", "news", entity, now),
        scored(f"b-{unique}", "news", entity, now - 200 * DAY),
        scored(f"c-{unique}", "news", entity, now - 30 * DAY),
    ]
    await ensure_topics(settings.kafka, [settings.topics.text_scored])
    producer = make_producer(settings.kafka, client_id="test")
    await producer.start()
    try:
        for e in events:  # in order, one partition: the recent event first
            await producer.send_and_wait(settings.topics.text_scored, e.to_bytes(), key=b"k")
    finally:
        await producer.stop()
    env = {
        "TW_AGGREGATOR_GROUP_ID": f"agg-{unique}",
        "TW_AGGREGATOR_TREND_RETENTION_DAYS": str(MIN_TREND_RETENTION_DAYS),
    }
    ids = [e.id for e in events]
    with running("aggregator", settings, tmp_path, **env):

        async def all_counted() -> bool:
            return await ledger_has(sessions, ids) == set(ids)

        await wait_until(all_counted, timeout=60)
        await wait_until(lambda: "dropped too old" in log_tail(tmp_path, "aggregator", 1_000_000), timeout=30)
    assert {b for e, b in await kept(sessions, "trend_minute", "news") if e == entity} == {now, now - 30 * DAY}
    assert {b for e, b in await kept(sessions, "trend_hour", "news") if e == entity} == {
        hour_of(now),
        hour_of(now - 30 * DAY),
    }
    assert "1 news events" in log_tail(tmp_path, "aggregator", 1_000_000)
