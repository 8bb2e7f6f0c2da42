"""Stage: one PostgreSQL transaction per batch.

Exactly once: (event id, stream) pairs go into the ``counted_events`` ledger with
``ON CONFLICT DO NOTHING RETURNING``; only the events that were new are added to
the buckets, in the same transaction. Ids are unique within a stream only: a news
and a chat event with the same id are two events. A replay after a crash (before or after the
database commit) therefore never counts an event twice. Bucket changes are
announced with ``NOTIFY tonewatch_buckets`` which PostgreSQL delivers at commit: the
(stream, entity, model version) keys of the minute and hour rows written.

With a trend retention, a new event's buckets past its stream's retention cutoff (see
the trend retention below) are not written: the retention run would delete them again,
and until then a late event made a partial bucket appear in the trends. The event is
still in the ledger (it is counted once, a replay adds nothing) and in ``scored_events``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, TextClause, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregator.buckets import (
    HOUR,
    MINUTE,
    BucketKey,
    Delta,
    aggregate,
    counted_under,
    drop_past_cutoffs,
    minute_of,
    newest_minutes,
    past_cutoff,
    stream_clock,
    trend_cutoff,
)
from services.alerter.explain import MESSAGES, TEXTS_REMOVED, without_texts
from shared.db.models import CountedEvent, ScoredEventRow, TrendHour, TrendMinute
from shared.events import ScoredEvent

NOTIFY_CHANNEL = "tonewatch_buckets"


# Fixed statements with array parameters: compiled and prepared once, one round trip
# per table whatever the batch size (a multi-row VALUES list is recompiled for every
# distinct row count, which cost more CPU than the inserts themselves).
_LEDGER = text(
    "INSERT INTO counted_events (id, stream) SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:streams AS text[])) "
    "ON CONFLICT DO NOTHING RETURNING id, stream"
)
_SCORED = text(
    """
    INSERT INTO scored_events (id, stream, event_time, received_time, entities, text, sentiment,
        sentiment_confidence, sentiment_score, negative_prob, intent, intent_confidence,
        conversation_id, model_version)
    SELECT r.id, r.stream, r.event_time, r.received_time, r.entities, r.text, r.sentiment,
        r.sentiment_confidence, r.sentiment_score, r.negative_prob, r.intent, r.intent_confidence,
        r.conversation_id, r.model_version
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id text, stream text, event_time timestamptz,
        received_time timestamptz, entities text[], text text, sentiment text,
        sentiment_confidence float8, sentiment_score float8, negative_prob float8, intent text,
        intent_confidence float8, conversation_id text, model_version text)
    ON CONFLICT DO NOTHING
    """
)
_COUNT_COLUMNS = ("count", "negative", "neutral", "positive", "score_sum", "confidence_sum")


def _upsert_statement(table: str) -> TextClause:
    sets = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in _COUNT_COLUMNS)
    return text(
        f"""
        INSERT INTO {table} (stream, entity, bucket, model_version, {", ".join(_COUNT_COLUMNS)})
        SELECT * FROM unnest(CAST(:stream AS text[]), CAST(:entity AS text[]), CAST(:bucket AS timestamptz[]),
            CAST(:model_version AS text[]), CAST(:count AS int8[]), CAST(:negative AS int8[]),
            CAST(:neutral AS int8[]), CAST(:positive AS int8[]), CAST(:score_sum AS float8[]),
            CAST(:confidence_sum AS float8[]))
        ON CONFLICT (stream, entity, bucket, model_version) DO UPDATE SET {sets}, updated_at = now()
        """
    )


_UPSERT = {name: _upsert_statement(name) for name in (TrendMinute.__tablename__, TrendHour.__tablename__)}


def _row(e: ScoredEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "stream": e.stream,
        "event_time": e.event_time.isoformat(),
        "received_time": e.received_time.isoformat(),
        "entities": counted_under(e),  # as counted in the buckets: ``_all`` always
        "text": e.text.replace("\x00", "\ufffd"),  # PostgreSQL text cannot hold NUL
        "sentiment": e.sentiment.label,
        "sentiment_confidence": e.sentiment.confidence,
        "sentiment_score": e.sentiment_score,
        "negative_prob": e.sentiment.probs.get("negative", 0.0),
        "intent": e.intent.label if e.intent else None,
        "intent_confidence": e.intent.confidence if e.intent else None,
        "conversation_id": e.conversation_id,
        "model_version": e.sentiment.version,
    }


def _columns(deltas: dict[BucketKey, Delta]) -> dict[str, list[Any]]:
    """Bucket deltas as one array per column, in key order (a stable lock order)."""
    items = sorted(deltas.items())
    return {
        "stream": [k[0] for k, _ in items],
        "entity": [k[1] for k, _ in items],
        "bucket": [k[2] for k, _ in items],
        "model_version": [k[3] for k, _ in items],
        "count": [d.count for _, d in items],
        "negative": [d.negative for _, d in items],
        "neutral": [d.neutral for _, d in items],
        "positive": [d.positive for _, d in items],
        "score_sum": [d.score_sum for _, d in items],
        "confidence_sum": [d.confidence_sum for _, d in items],
    }


async def _upsert(session: AsyncSession, table: str, deltas: dict[BucketKey, Delta]) -> None:
    if deltas:
        await session.execute(_UPSERT[table], _columns(deltas))


TooOld = dict[str, tuple[int, datetime]]
"""Per stream: how many new events were past the trend retention cutoff, and the cutoff."""


async def store_batch(
    sessions: async_sessionmaker[AsyncSession],
    events: Sequence[ScoredEvent],
    before_commit: Callable[[], None] | None = None,
    *,
    trend_retention_days: float = 0.0,
    too_old: Callable[[TooOld], None] | None = None,
) -> int:
    """Store a batch in one transaction; returns how many events were new. With
    ``trend_retention_days`` the buckets past their stream's cutoff are not written; the
    events whose minute was past it are passed to ``too_old`` after the commit."""
    firsts = {(e.id, e.stream): e for e in reversed(events)}  # the first of each duplicate
    # In the ledger's key order, as the buckets: concurrent batches over the same events
    # (a replay after a rebalance) then take their row locks in one order, never deadlocking.
    unique = [firsts[k] for k in sorted(firsts)]
    if not unique:
        return 0
    async with sessions.begin() as session:
        ledger = {"ids": [e.id for e in unique], "streams": [e.stream for e in unique]}
        new_keys = {(r.id, r.stream) for r in await session.execute(_LEDGER, ledger)}
        fresh = [e for e in unique if (e.id, e.stream) in new_keys]
        if not fresh:
            return 0
        await session.execute(_SCORED, {"rows": json.dumps([_row(e) for e in fresh])})
        minutes, hours = aggregate(fresh)
        dropped: TooOld = {}
        if trend_retention_days > 0:
            cutoffs = await _write_cutoffs(session, fresh, trend_retention_days)
            minutes = drop_past_cutoffs(minutes, MINUTE, cutoffs)
            hours = drop_past_cutoffs(hours, HOUR, cutoffs)
            for e in fresh:
                cutoff = cutoffs.get(e.stream)
                if cutoff is not None and past_cutoff(minute_of(e.event_time), MINUTE, cutoff):
                    dropped[e.stream] = (dropped.get(e.stream, (0, cutoff))[0] + 1, cutoff)
        await _upsert(session, TrendMinute.__tablename__, minutes)
        await _upsert(session, TrendHour.__tablename__, hours)
        # the keys of either table: a batch of late events whose minutes are past the
        # cutoff may still write the hour they share with kept minutes (the hour rows feed the
        # alerter's baselines; its sweep finds changed keys by their hour rows too)
        touched = sorted({(k[0], k[1], k[3]) for k in (*minutes, *hours)})
        payload = json.dumps({"buckets": [list(t) for t in touched][:500]})
        if len(payload) >= 7_900:  # NOTIFY payload limit is 8000 bytes
            payload = '{"all": true}'
        await session.execute(text("SELECT pg_notify(:c, :p)"), {"c": NOTIFY_CHANNEL, "p": payload})
        if before_commit is not None:
            before_commit()
    if dropped and too_old is not None:
        too_old(dropped)
    return len(fresh)


async def _write_cutoffs(
    session: AsyncSession, fresh: Sequence[ScoredEvent], days: float
) -> dict[str, datetime | None]:
    """The trend retention cutoff of each stream in ``fresh``, its clock counting the
    batch's own minutes (as the next retention run will)."""
    batch = newest_minutes(fresh)
    rows = await session.execute(_STREAM_CLOCKS, {"streams": sorted(batch)})
    return {r.stream: trend_cutoff(stream_clock(r.now, r.minute, r.hour, batch[r.stream]), days) for r in rows}


# Scored-event and ledger retention, in chunks, one short transaction each (as the trend
# retention below): a backlog of millions of rows (a retention shortened, the aggregator down
# for days) never makes one transaction that holds its locks and snapshot for minutes, bloats
# the WAL, holds back vacuum or runs into a statement timeout, and a failure part-way keeps
# the chunks done. Each walk follows its time index (``ix_scored_events_created_at``,
# ``ix_counted_events_counted_at``) from where the last chunk ended, so a chunk does not
# re-read the dead entries of the chunks before it. The scored events go first and the
# ledger after, and a ledger id goes only while older than every stored scored event (an
# event and its id are written in one transaction, with the same ``created_at`` and
# ``counted_at``): a run stopped between chunks, or one beside another replica's, never
# leaves an event stored without its id (a replay of it would be counted again; see
# ``AggregatorSettings``: the ledger's retention is at least the scored events').
EXPIRE_CHUNK = 10_000
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _expire_chunk(table: str, column: str) -> TextClause:
    return text(
        f"""
        DELETE FROM {table} WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM {table} WHERE {column} >= :after AND {column} < :cutoff
            ORDER BY {column} LIMIT :size
        ))
        RETURNING {column}
        """
    )


_EXPIRE_SCORED = _expire_chunk(ScoredEventRow.__tablename__, "created_at")
_EXPIRE_LEDGER = _expire_chunk(CountedEvent.__tablename__, "counted_at")
_OLDEST_SCORED = text("SELECT min(created_at) FROM scored_events")


async def _expire_walk(
    sessions: async_sessionmaker[AsyncSession], statement: TextClause, cutoff: datetime, chunk: int
) -> int:
    """Delete the rows before ``cutoff`` a chunk at a time, oldest first; returns how many."""
    after, deleted = _EARLIEST, 0
    while True:
        async with sessions.begin() as session:
            params = {"after": after, "cutoff": cutoff, "size": chunk}
            times = list((await session.execute(statement, params)).scalars())
        deleted += len(times)
        if len(times) < chunk:
            return deleted
        after = max(times)
        await asyncio.sleep(0)  # the batches' turn


async def expire(
    sessions: async_sessionmaker[AsyncSession], *, scored_days: float, ledger_days: float, chunk: int = EXPIRE_CHUNK
) -> tuple[int, int]:
    """Delete scored events and ledger ids past their retention, ``chunk`` rows a
    transaction (see above); returns how many of each."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, not {chunk}")
    now = datetime.now(UTC)
    scored = await _expire_walk(sessions, _EXPIRE_SCORED, now - timedelta(days=scored_days), chunk)
    async with sessions() as session:
        oldest = (await session.execute(_OLDEST_SCORED)).scalar()
    cutoff = now - timedelta(days=ledger_days)
    if oldest is not None:
        cutoff = min(cutoff, oldest)
    return scored, await _expire_walk(sessions, _EXPIRE_LEDGER, cutoff, chunk)


# Trend retention. The cutoff is per stream, on the database's clock: a stream's newest
# bucket in either table (a minute, or an hour's start: a stream whose minute rows are gone,
# or that has only hour rows, still has one; now, if that is earlier) less the retention,
# so a stream replayed from older history (the demo's 2020 headlines) or one whose feed
# stopped keeps the buckets its newest minute's windows and baselines read, and buckets
# ahead of the clock move no cutoff (``buckets.trend_cutoff``). A bucket goes once all of
# it is older than the cutoff (a minute bucket one minute after its start, an hour bucket
# one hour after); the aggregator does not write such buckets (``store_batch``). Rows go
# in chunks, one short transaction each, walking ``(stream, bucket)`` (the index of
# migration 0010) from where the last chunk ended, so a chunk neither scans the table nor
# re-reads the dead entries of the chunks before it; rows an aggregator batch holds locked
# are skipped (the next run takes them), so the run never waits on a batch and cannot
# deadlock with one. A run stops after ``cap`` rows: a first run on years of history
# leaves the rest to the next runs.
TREND_CHUNK = 10_000
TREND_RUN_CAP = 1_000_000
_TREND_WIDTHS = ((TrendMinute.__tablename__, MINUTE), (TrendHour.__tablename__, HOUR))


def _trend_streams(table: str) -> TextClause:
    """Every stream in the table, one index probe each (a loose scan of the (stream, bucket) index)."""
    return text(
        f"""
        WITH RECURSIVE s(stream) AS (
            (SELECT stream FROM {table} ORDER BY stream LIMIT 1)
            UNION ALL
            SELECT (SELECT m.stream FROM {table} AS m WHERE m.stream > s.stream ORDER BY m.stream LIMIT 1)
            FROM s WHERE s.stream IS NOT NULL
        )
        SELECT stream FROM s WHERE stream IS NOT NULL
        """
    )


_TREND_STREAMS = [_trend_streams(table) for table, _ in _TREND_WIDTHS]
# each stream's newest bucket per table (two index probes) and the database's clock
_STREAM_CLOCKS = text(
    """
    SELECT s.stream, now() AS now,
        (SELECT max(bucket) FROM trend_minute AS m WHERE m.stream = s.stream) AS minute,
        (SELECT max(bucket) FROM trend_hour AS h WHERE h.stream = s.stream) AS hour
    FROM unnest(CAST(:streams AS text[])) AS s(stream)
    """
)


def _trend_chunk(table: str) -> TextClause:
    return text(
        f"""
        WITH doomed AS (
            SELECT ctid FROM {table}
            WHERE stream = :stream AND bucket >= :after AND bucket <= :upto
            ORDER BY bucket LIMIT :size
            FOR UPDATE SKIP LOCKED
        ), gone AS (
            DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM doomed)) RETURNING bucket
        )
        SELECT count(*) AS n, max(bucket) AS last FROM gone
        """
    )


_TREND_CHUNK = {table: _trend_chunk(table) for table, _ in _TREND_WIDTHS}


async def _trend_cutoffs(sessions: async_sessionmaker[AsyncSession], days: float) -> dict[str, datetime]:
    """Each stream's cutoff; a stream whose cutoff would fall before the calendar has none."""
    async with sessions() as session:
        streams = {str(v) for q in _TREND_STREAMS for v in (await session.execute(q)).scalars()}
        rows = await session.execute(_STREAM_CLOCKS, {"streams": sorted(streams)})
        cutoffs = {r.stream: trend_cutoff(stream_clock(r.now, r.minute, r.hour), days) for r in rows}
    return {stream: cutoff for stream, cutoff in cutoffs.items() if cutoff is not None}


async def expire_trends(
    sessions: async_sessionmaker[AsyncSession], *, days: float, chunk: int = TREND_CHUNK, cap: int = TREND_RUN_CAP
) -> dict[str, int]:
    """Delete trend buckets older than ``days`` before their stream's newest bucket (see
    above); ``days`` 0 keeps them all. Returns the rows deleted per table."""
    deleted = {table: 0 for table, _ in _TREND_WIDTHS}
    if days <= 0:
        return deleted
    left = cap
    for stream, cutoff in (await _trend_cutoffs(sessions, days)).items():
        for table, width in _TREND_WIDTHS:
            after = _EARLIEST
            while left > 0:
                size = min(chunk, left)
                params = {"stream": stream, "after": after, "upto": cutoff - width, "size": size}
                async with sessions.begin() as session:
                    n, last = (await session.execute(_TREND_CHUNK[table], params)).one()
                deleted[table] += n
                left -= n
                if n < size:
                    break
                after = last
    return deleted


# The alerts' explanations quote the scored events' texts (``MESSAGES``); the texts go
# with the events. One transaction per chunk of ids in key order, so a backlog of
# millions of alerts never makes one long transaction, and the walk reads each id once.
STRIP_CHUNK = 1_000
_CHUNK_END = text("SELECT max(id) FROM (SELECT id FROM alerts WHERE id > :after ORDER BY id LIMIT :size) AS c")
# By fired_at, the wall-clock time, as the scored events go by their insertion time: an
# alert on backfilled (old) events keeps its quotes as long as those events stay, and one
# on events ahead of the clock loses them with the events. The marker keeps a stripped
# alert from being written again.
_QUOTING = text(
    f"""
    SELECT id, explanation FROM alerts
    WHERE id > :after AND id <= :upto AND fired_at < :cutoff
        AND explanation -> '{TEXTS_REMOVED}' IS NULL
        AND jsonb_typeof(explanation -> '{MESSAGES}') = 'array'
        AND jsonb_path_exists(explanation, '$.{MESSAGES}[*].text')
    FOR UPDATE SKIP LOCKED
    """
).columns(id=String, explanation=JSONB)
_STRIP = text(
    "UPDATE alerts SET explanation = u.explanation "
    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS u(id text, explanation jsonb) WHERE alerts.id = u.id"
)


async def strip_alert_texts(
    sessions: async_sessionmaker[AsyncSession], *, cutoff: datetime, chunk: int = STRIP_CHUNK
) -> int:
    """Remove the message texts from the explanations of alerts fired before ``cutoff``;
    returns how many alerts were changed. A locked alert (an acknowledgement in progress)
    is skipped until the next run."""
    after, stripped = "", 0
    while True:
        async with sessions.begin() as session:
            upto = (await session.execute(_CHUNK_END, {"after": after, "size": chunk})).scalar()
            if upto is None:
                return stripped
            params = {"after": after, "upto": upto, "cutoff": cutoff}
            rows = [
                {"id": r.id, "explanation": without_texts(r.explanation)}
                for r in await session.execute(_QUOTING, params)
            ]
            if rows:
                await session.execute(_STRIP, {"rows": json.dumps(rows)})
        stripped += len(rows)
        after = upto
