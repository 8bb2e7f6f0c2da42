"""Router storage: the routing table and the exactly-once routing counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregator.buckets import minute_of
from services.router.policy import DEFAULT_ROUTES
from shared.db.models import RoutingRule
from shared.events import RoutedChat

# Fixed statements with array parameters, as the aggregator's: asyncpg takes at most 32,767
# parameters, and a multi-row VALUES list of 16,384 chats (two each) raised InterfaceError,
# retried for ever after the batch had been sent to the queues, so every retry sent it again.
_ROUTED = text("SELECT id FROM routed_events WHERE id = ANY(CAST(:ids AS text[]))")
_LEDGER = text(
    "INSERT INTO routed_events (id, queue) SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:queues AS text[])) "
    "ON CONFLICT DO NOTHING RETURNING id"
)
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


async def already_routed(sessions: async_sessionmaker[AsyncSession], ids: Sequence[str]) -> set[str]:
    """Those of ``ids`` the ledger holds: routed (sent and counted) before."""
    if not ids:
        return set()
    async with sessions() as session:
        return set((await session.execute(_ROUTED, {"ids": sorted(set(ids))})).scalars())


async def count_routed(sessions: async_sessionmaker[AsyncSession], routed: Sequence[RoutedChat]) -> int:
    """Ledger + per-minute counts in one transaction; only new ids count."""
    unique = list({r.id: r for r in routed}.values())
    if not unique:
        return 0
    async with sessions.begin() as session:
        ledger = {"ids": [r.id for r in unique], "queues": [r.queue for r in unique]}
        new = set((await session.execute(_LEDGER, ledger)).scalars())
        counts: Counter[tuple[datetime, str]] = Counter()
        prio: Counter[tuple[datetime, str]] = Counter()
        for r in unique:
            if r.id in new:
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
    return len(new)
