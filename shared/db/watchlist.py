"""Watchlist storage: entities in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, case, delete, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

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
        stored=True,
    )


async def load_active(sessions: async_sessionmaker[AsyncSession]) -> list[WatchedEntity]:
    async with sessions() as session:
        rows = (await session.execute(select(Entity).where(Entity.active.is_(True)).order_by(Entity.key))).scalars()
        return [to_watched(r) for r in rows]


def _since(table: Table, excluded: Any) -> dict[str, ColumnElement[Any]]:
    """On an update, the entity's coverage times: ``watched_since`` moves on when it is made
    active again, ``group_since`` when its group changes; otherwise they are kept. On the
    database's clock at the row's write (``clock_timestamp()`` in the update, so after any
    evaluation holding the row has committed: what that evaluation saved predates them)."""
    c = table.c
    return {
        "watched_since": case((c.active.is_(True), c.watched_since), else_=func.clock_timestamp()),
        "group_since": case((c.grp.is_not_distinct_from(excluded.grp), c.group_since), else_=func.clock_timestamp()),
    }


def upsert_statement(e: WatchedEntity) -> ReturningInsert[Any]:
    """Add or replace one entity, active, as one statement returning the row written and
    whether it was inserted (``inserted``: ``xmax = 0``; an update by ``ON CONFLICT`` leaves
    the new row version locked by the writing transaction). A new entity's ``watched_since``
    and ``group_since`` are the time of its insert; an existing one keeps them unless it was
    inactive (``watched_since`` moves on) or changes group (``group_since`` moves on), so
    rules over a group or every entity start to evaluate it with the data stored from then
    on (:mod:`services.alerter.evaluate`)."""
    table = cast(Table, Entity.__table__)
    values = {
        "key": e.key,
        "name": e.name,
        "aliases": list(e.aliases),
        "tickers": list(e.tickers),
        "case_sensitive_aliases": list(e.case_sensitive_aliases),
        "grp": e.group,
        "active": True,
    }
    stmt = insert(table).values(**values, watched_since=func.clock_timestamp(), group_since=func.clock_timestamp())
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={**{k: stmt.excluded[k] for k in values if k != "key"}, **_since(table, stmt.excluded)},
    )
    return stmt.returning(*table.c, literal_column("xmax = 0").label("inserted"))


async def upsert(sessions: async_sessionmaker[AsyncSession], entities: Iterable[WatchedEntity]) -> int:
    """Add or replace entities, active (:func:`upsert_statement`), in one transaction.
    Removing an entity deletes it: added again, it is new."""
    n = 0
    async with sessions.begin() as session:
        # in key order: two imports of the same entities in other orders never deadlock
        for e in sorted(entities, key=lambda e: e.key):
            await session.execute(upsert_statement(e))
            n += 1
    return n


async def remove(sessions: async_sessionmaker[AsyncSession], key: str) -> bool:
    async with sessions.begin() as session:
        result = await session.execute(delete(Entity).where(Entity.key == key))
        return bool(result.rowcount)  # type: ignore[attr-defined]
