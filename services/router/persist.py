"""Router storage: the routing table, the ledger of routing decisions (recorded before
they are sent, marked once sent) and the exactly-once routing counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregator.buckets import minute_of
from services.router.policy import DEFAULT_ROUTES
from shared.db.models import RoutingRule
from shared.events import RoutedChat

# Fixed statements with array parameters, as the aggregator's: asyncpg takes at most 32,767
# parameters, and a multi-row VALUES list of 16,384 chats (two each) raised InterfaceError,
# classed retryable: the batch was retried for ever.
_DECIDE = text(
    "INSERT INTO routed_events (id, queue, priority, reason) SELECT * FROM unnest(CAST(:ids AS text[]), "
    "CAST(:queues AS text[]), CAST(:priorities AS boolean[]), CAST(:reasons AS text[])) "
    "ON CONFLICT DO NOTHING RETURNING id"
)
_LEDGER = text(
    "SELECT id, queue, priority, reason, sent_at IS NOT NULL AS sent FROM routed_events "
    "WHERE id = ANY(CAST(:ids AS text[]))"
)
_EXPIRE = text("DELETE FROM routed_events WHERE sent_at < now() - make_interval(secs => :seconds)")
_SENT = text("UPDATE routed_events SET sent_at = now() WHERE id = ANY(CAST(:ids AS text[])) AND sent_at IS NULL")
_COUNTS = text(
    """
    INSERT INTO routing_minute (bucket, queue, count, priority)
    SELECT * FROM unnest(CAST(:buckets AS timestamptz[]), CAST(:queues AS text[]), CAST(:counts AS int8[]),
        CAST(:priorities AS int8[]))
    ON CONFLICT (bucket, queue) DO UPDATE SET count = routing_minute.count + excluded.count,
        priority = routing_minute.priority + excluded.priority
    """
)


async def load_routes(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with sessions() as session:
        rows = (await session.execute(select(RoutingRule))).scalars().all()
    return {r.intent: r.queue for r in rows} or dict(DEFAULT_ROUTES)


class Recorded(NamedTuple):
    """A ledger row: the decision taken for a chat, and whether its queue acknowledged it.
    ``priority`` and ``reason`` are None on rows from before migration 0009 (all sent)."""

    queue: str
    priority: bool | None
    reason: str | None
    sent: bool


def to_send(decided: Sequence[RoutedChat], ledger: Mapping[str, Recorded]) -> list[RoutedChat]:
    """The chats to put on their queues: each id once (its first copy), as the ledger
    decided it, unless the ledger says it was sent. An id the ledger lacks is not sent:
    only a decision that was recorded (and counted) goes out."""
    out: list[RoutedChat] = []
    for r in first_copies(decided):
        row = ledger.get(r.id)
        if row is None or row.sent:
            continue
        priority = r.priority if row.priority is None else row.priority
        reason = r.reason if row.reason is None else row.reason
        out.append(r.model_copy(update={"queue": row.queue, "priority": priority, "reason": reason}))
    return out


def first_copies(routed: Sequence[RoutedChat]) -> list[RoutedChat]:
    first: dict[str, RoutedChat] = {}
    for r in routed:
        first.setdefault(r.id, r)
    return list(first.values())


async def record_decisions(
    sessions: async_sessionmaker[AsyncSession], decided: Sequence[RoutedChat]
) -> list[RoutedChat]:
    """Record each new id's decision, not yet sent, and count it, in one transaction; return
    what is to be sent (:func:`to_send`): a new id as decided, an id recorded before but not
    sent as recorded then (a table, threshold or score changed since must not send it to a
    second queue), none that was sent."""
    unique = first_copies(decided)
    if not unique:
        return []
    ordered = sorted(unique, key=lambda r: r.id)  # a stable lock order
    async with sessions.begin() as session:
        decisions = {
            "ids": [r.id for r in ordered],
            "queues": [r.queue for r in ordered],
            "priorities": [r.priority for r in ordered],
            "reasons": [r.reason for r in ordered],
        }
        new = set((await session.execute(_DECIDE, decisions)).scalars())
        await _count(session, [r for r in unique if r.id in new])
        rows = await session.execute(_LEDGER, {"ids": decisions["ids"]})
        ledger = {row.id: Recorded(row.queue, row.priority, row.reason, row.sent) for row in rows}
    return to_send(unique, ledger)


async def mark_sent(sessions: async_sessionmaker[AsyncSession], ids: Sequence[str]) -> None:
    """The queues acknowledged ``ids``: a redelivery skips them."""
    if ids:
        async with sessions.begin() as session:
            await session.execute(_SENT, {"ids": sorted(set(ids))})


async def _count(session: AsyncSession, new: Sequence[RoutedChat]) -> None:
    counts: Counter[tuple[datetime, str]] = Counter()
    prio: Counter[tuple[datetime, str]] = Counter()
    for r in new:
        counts[(minute_of(r.event_time), r.queue)] += 1
        prio[(minute_of(r.event_time), r.queue)] += int(r.priority)
    if counts:
        keys = sorted(counts)  # a stable lock order
        await session.execute(
            _COUNTS,
            {
                "buckets": [k[0] for k in keys],
                "queues": [k[1] for k in keys],
                "counts": [counts[k] for k in keys],
                "priorities": [prio[k] for k in keys],
            },
        )


async def expire_sent(sessions: async_sessionmaker[AsyncSession], *, days: float) -> int:
    """Delete the ledger rows of chats sent more than ``days`` ago; a row not yet sent
    stays whatever its age (deleting it would let a redelivery route the chat afresh)."""
    async with sessions.begin() as session:
        result = await session.execute(_EXPIRE, {"seconds": days * 86_400})
    return int(result.rowcount)  # type: ignore[attr-defined]
