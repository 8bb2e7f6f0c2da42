"""Router storage: the routing table and the exactly-once routing counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregator.buckets import minute_of
from services.router.policy import DEFAULT_ROUTES
from shared.db.models import RoutedEvent, RoutingMinute, RoutingRule
from shared.events import RoutedChat


async def load_routes(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with sessions() as session:
        rows = (await session.execute(select(RoutingRule))).scalars().all()
    return {r.intent: r.queue for r in rows} or dict(DEFAULT_ROUTES)


async def already_routed(sessions: async_sessionmaker[AsyncSession], ids: Sequence[str]) -> set[str]:
    """Those of ``ids`` the ledger holds: routed (sent and counted) before."""
    if not ids:
        return set()
    async with sessions() as session:
        return set((await session.execute(select(RoutedEvent.id).where(RoutedEvent.id.in_(set(ids))))).scalars())


async def count_routed(sessions: async_sessionmaker[AsyncSession], routed: Sequence[RoutedChat]) -> int:
    """Ledger + per-minute counts in one transaction; only new ids count."""
    unique = list({r.id: r for r in routed}.values())
    if not unique:
        return 0
    async with sessions.begin() as session:
        stmt = insert(RoutedEvent).values([{"id": r.id, "queue": r.queue} for r in unique]).on_conflict_do_nothing()
        new = set((await session.execute(stmt.returning(RoutedEvent.id))).scalars())
        counts: Counter[tuple[datetime, str]] = Counter()
        prio: Counter[tuple[datetime, str]] = Counter()
        for r in unique:
            if r.id in new:
                counts[(minute_of(r.event_time), r.queue)] += 1
                prio[(minute_of(r.event_time), r.queue)] += int(r.priority)
        if counts:
            rows = [{"bucket": k[0], "queue": k[1], "count": n, "priority": prio[k]} for k, n in sorted(counts.items())]
            up = insert(RoutingMinute).values(rows)
            up = up.on_conflict_do_update(
                index_elements=["bucket", "queue"],
                set_={
                    "count": RoutingMinute.count + up.excluded["count"],
                    "priority": RoutingMinute.priority + up.excluded["priority"],
                },
            )
            await session.execute(up)
    return len(new)
