"""Stage: one PostgreSQL transaction per batch.

Exactly once: event ids go into the ``counted_events`` ledger with
``ON CONFLICT DO NOTHING RETURNING id``; only the ids that were new are added to
the buckets, in the same transaction. A replay after a crash (before or after the
database commit) therefore never counts an event twice. Bucket changes are
announced with ``NOTIFY tonewatch_buckets`` which PostgreSQL delivers at commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregator.buckets import BucketKey, Delta, aggregate
from shared.db.models import CountedEvent, ScoredEventRow, TrendHour, TrendMinute
from shared.events import ScoredEvent

NOTIFY_CHANNEL = "tonewatch_buckets"


def _row(e: ScoredEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "stream": e.stream,
        "event_time": e.event_time,
        "received_time": e.received_time,
        "entities": list(dict.fromkeys(e.entities)),
        "text": e.text,
        "sentiment": e.sentiment.label,
        "sentiment_confidence": e.sentiment.confidence,
        "sentiment_score": e.sentiment_score,
        "negative_prob": e.sentiment.probs.get("negative", 0.0),
        "intent": e.intent.label if e.intent else None,
        "intent_confidence": e.intent.confidence if e.intent else None,
        "conversation_id": e.conversation_id,
        "model_version": e.sentiment.version,
    }


async def _upsert(session: AsyncSession, table: Any, deltas: dict[BucketKey, Delta]) -> None:
    if not deltas:
        return
    rows = [
        {
            "stream": k[0],
            "entity": k[1],
            "bucket": k[2],
            "model_version": k[3],
            "count": d.count,
            "negative": d.negative,
            "neutral": d.neutral,
            "positive": d.positive,
            "score_sum": d.score_sum,
            "confidence_sum": d.confidence_sum,
        }
        for k, d in sorted(deltas.items())
    ]
    stmt = insert(table).values(rows)
    cols = ("count", "negative", "neutral", "positive", "score_sum", "confidence_sum")
    stmt = stmt.on_conflict_do_update(
        index_elements=["stream", "entity", "bucket", "model_version"],
        set_={**{c: table.c[c] + stmt.excluded[c] for c in cols}, "updated_at": func.now()},
    )
    await session.execute(stmt)


async def store_batch(
    sessions: async_sessionmaker[AsyncSession],
    events: Sequence[ScoredEvent],
    before_commit: Callable[[], None] | None = None,
) -> int:
    """Store a batch in one transaction; returns how many events were new."""
    unique = list({e.id: e for e in reversed(events)}.values())[::-1]
    if not unique:
        return 0
    async with sessions.begin() as session:
        ledger = insert(CountedEvent).values([{"id": e.id} for e in unique]).on_conflict_do_nothing()
        new_ids = set((await session.execute(ledger.returning(CountedEvent.id))).scalars())
        fresh = [e for e in unique if e.id in new_ids]
        if not fresh:
            return 0
        await session.execute(insert(ScoredEventRow).values([_row(e) for e in fresh]).on_conflict_do_nothing())
        minutes, hours = aggregate(fresh)
        await _upsert(session, TrendMinute.__table__, minutes)
        await _upsert(session, TrendHour.__table__, hours)
        touched = sorted({(k[0], k[1], k[3]) for k in minutes})
        payload = json.dumps({"buckets": [list(t) for t in touched][:500]})
        if len(payload) < 7_900:  # NOTIFY payload limit is 8000 bytes
            await session.execute(text("SELECT pg_notify(:c, :p)"), {"c": NOTIFY_CHANNEL, "p": payload})
        else:
            await session.execute(text("SELECT pg_notify(:c, :p)"), {"c": NOTIFY_CHANNEL, "p": '{"all": true}'})
        if before_commit is not None:
            before_commit()
    return len(fresh)


async def expire(
    sessions: async_sessionmaker[AsyncSession], *, scored_days: float, ledger_days: float
) -> tuple[int, int]:
    """Delete scored events and ledger ids past their retention."""
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        a = await session.execute(
            delete(ScoredEventRow).where(ScoredEventRow.created_at < now - timedelta(days=scored_days))
        )
        b = await session.execute(
            delete(CountedEvent).where(CountedEvent.counted_at < now - timedelta(days=ledger_days))
        )
    return int(a.rowcount), int(b.rowcount)  # type: ignore[attr-defined]
