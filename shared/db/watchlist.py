"""Watchlist storage: entities in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import Entity
from shared.entities import WatchedEntity


def to_watched(row: Entity) -> WatchedEntity:
    return WatchedEntity(
        key=row.key,
        name=row.name,
        aliases=tuple(row.aliases or ()),
        tickers=tuple(row.tickers or ()),
        case_sensitive_aliases=tuple(row.case_sensitive_aliases or ()),
        group=row.group,
    )


async def load_active(sessions: async_sessionmaker[AsyncSession]) -> list[WatchedEntity]:
    async with sessions() as session:
        rows = (await session.execute(select(Entity).where(Entity.active.is_(True)).order_by(Entity.key))).scalars()
        return [to_watched(r) for r in rows]


async def upsert(sessions: async_sessionmaker[AsyncSession], entities: Iterable[WatchedEntity]) -> int:
    n = 0
    async with sessions.begin() as session:
        for e in entities:
            values = {
                "key": e.key,
                "name": e.name,
                "aliases": list(e.aliases),
                "tickers": list(e.tickers),
                "case_sensitive_aliases": list(e.case_sensitive_aliases),
                "grp": e.group,
                "active": True,
            }
            stmt = insert(cast(Table, Entity.__table__)).values(**values)
            stmt = stmt.on_conflict_do_update(
                index_elements=["key"], set_={k: stmt.excluded[k] for k in values if k != "key"}
            )
            await session.execute(stmt)
            n += 1
    return n


async def remove(sessions: async_sessionmaker[AsyncSession], key: str) -> bool:
    async with sessions.begin() as session:
        result = await session.execute(delete(Entity).where(Entity.key == key))
        return bool(result.rowcount)  # type: ignore[attr-defined]
