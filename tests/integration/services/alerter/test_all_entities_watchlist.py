"""A rule scoped to all entities covers the watchlist's entities, on the real database
and Redis: an entity that leaves the watchlist has its open alert resolved by the
alerter's sweep check (as for a group rule), a pass that read the rules before the
removal fires nothing for it, and an entity never watched is not evaluated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from alert_scenario import add_rule, timeline
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregator.persist import store_batch
from services.alerter import repo
from services.alerter.evaluate import Evaluator
from services.alerter.rules import Scope
from shared.db import watchlist
from shared.db.models import Alert, AlertState, Entity
from shared.entities import WatchedEntity

pytestmark = pytest.mark.integration
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def all_entities_rule(sessions: Sessions, unique: str) -> AsyncIterator[int]:
    """A rule over all entities, disabled after the test (it would cover every later test's watchlist)."""
    rule_id = await add_rule(sessions, f"every-{unique}", f"X{unique}", scope=Scope(all_entities=True))
    yield rule_id
    async with sessions.begin() as s:
        await repo.update_rule(s, rule_id, {"enabled": False})


async def watch(sessions: Sessions, *entities: str) -> None:
    await watchlist.upsert(sessions, [WatchedEntity(e, e.title()) for e in entities])


async def fired(evaluator: Evaluator, entity: str, rule_id: int, snap: Any = None) -> list[str]:
    """Evaluate the entity's news (timeline: a spike to the end); the kinds of the rule's changes."""
    return [c.kind for c in await evaluator.evaluate("news", entity, "v1", snap) if c.rule.id == rule_id]


async def statuses(sessions: Sessions, rule_id: int) -> dict[str, str]:
    async with sessions() as s:
        rows = await s.execute(select(Alert.entity, Alert.status).where(Alert.rule_id == rule_id))
        return dict(rows.tuples().all())


async def test_an_entity_removed_from_the_watchlist_has_its_all_entities_alert_resolved(
    sessions: Sessions, evaluator: Evaluator, unique: str, all_entities_rule: int
) -> None:
    """Two watched entities alert under the all-entities rule; one leaves the watchlist.
    Before, the sweep's check resolved only group rules' alerts: the all-entities alert
    stayed open for good (nothing evaluates an unwatched entity again). Now it is
    resolved and cleared from the detector state; the other stays open."""
    gone, stays = f"GONE{unique}", f"STAYS{unique}"
    await watch(sessions, gone, stays)
    for entity in (gone, stays):
        await store_batch(sessions, timeline(entity, 70, [(60, 70)]))
        assert await fired(evaluator, entity, all_entities_rule) == ["fire"]

    assert await watchlist.remove(sessions, gone)
    resolved = await repo.resolve_uncovered(sessions)

    assert await statuses(sessions, all_entities_rule) == {gone: "resolved", stays: "open"}
    async with sessions() as s:
        gone_id = (await s.execute(select(Alert.id).where(Alert.entity == gone))).scalars().all()
        state = (
            await s.execute(
                select(AlertState.state).where(AlertState.rule_id == all_entities_rule, AlertState.entity == gone)
            )
        ).scalar_one()
    assert set(gone_id) <= set(resolved)
    assert state["open_alert"] is None


async def test_a_pass_that_read_the_rules_before_the_removal_fires_nothing_for_the_entity(
    sessions: Sessions, evaluator: Evaluator, unique: str, all_entities_rule: int
) -> None:
    """The pass reads the rules and the watchlist, then the entity is removed (committed),
    then the pass evaluates it: the rule, rechecked as committed, no longer covers it.
    Before, the all-entities rule fired an alert about an entity off the watchlist."""
    entity = f"RACE{unique}"
    await watch(sessions, entity)
    await store_batch(sessions, timeline(entity, 70, [(60, 70)]))
    snap = await evaluator.snapshot()
    assert entity in snap.groups

    assert await watchlist.remove(sessions, entity)

    assert await fired(evaluator, entity, all_entities_rule, snap) == []
    assert await statuses(sessions, all_entities_rule) == {}


async def test_an_entity_never_watched_is_not_evaluated_by_an_all_entities_rule(
    sessions: Sessions, evaluator: Evaluator, unique: str, all_entities_rule: int
) -> None:
    """Data counted under an entity the watchlist does not hold (it was removed since, or
    the feed tagged it otherwise) is not the rule's: nothing fires, no state is kept."""
    entity = f"NEVER{unique}"
    await store_batch(sessions, timeline(entity, 70, [(60, 70)]))
    assert await fired(evaluator, entity, all_entities_rule) == []
    assert await statuses(sessions, all_entities_rule) == {}


async def test_the_watchlist_records_since_when_an_entity_is_watched_and_in_its_group(
    sessions: Sessions, unique: str
) -> None:
    """What the evaluation reads to tell when the watchlist brought an entity into a rule's
    scope (it leaves the detector states alone): ``watched_since`` moves on when the entity
    is added (again, after a removal) or made active again, ``group_since`` when it is
    added or its group changes; replacing the entry otherwise keeps both."""
    entity = f"SINCE{unique}"

    async def since() -> tuple[datetime, datetime]:
        async with sessions() as s:
            q = select(Entity.watched_since, Entity.group_since).where(Entity.key == entity)
            watched, grouped = (await s.execute(q)).one()
        return watched, grouped

    async def put(group: str | None, name: str = "Since") -> tuple[datetime, datetime]:
        await watchlist.upsert(sessions, [WatchedEntity(entity, name, group=group)])
        return await since()

    try:
        watched, grouped = await put("a")
        assert await put("a", name="Renamed") == (watched, grouped)
        watched2, grouped2 = await put("b")
        assert watched2 == watched and grouped2 > grouped
        watched3, grouped3 = await put(None)
        assert watched3 == watched and grouped3 > grouped2
        assert await put(None) == (watched3, grouped3)

        async with sessions.begin() as s:
            await s.execute(update(Entity).where(Entity.key == entity).values(active=False))
        watched4, grouped4 = await put(None)
        assert watched4 > watched3 and grouped4 == grouped3  # made active again

        assert await watchlist.remove(sessions, entity)
        watched5, grouped5 = await put(None)
        assert watched5 > watched4 and grouped5 > grouped4  # added again: new
    finally:
        await watchlist.remove(sessions, entity)


async def test_imports_of_the_same_entities_in_other_orders_run_side_by_side(sessions: Sessions, unique: str) -> None:
    """Two imports of one watchlist at once, one file in the reverse order of the other
    (an operator's import beside a deploy's): each locks the rows in key order, so neither
    waits on the other in a cycle (PostgreSQL would end one with a deadlock error)."""
    keys = [f"ORD{unique}{i:03d}" for i in range(300)]
    entries = [WatchedEntity(key, key, group="g") for key in keys]
    try:
        for _ in range(3):
            counts = await asyncio.gather(
                watchlist.upsert(sessions, entries), watchlist.upsert(sessions, list(reversed(entries)))
            )
            assert counts == [300, 300]
    finally:
        async with sessions.begin() as s:
            await s.execute(delete(Entity).where(Entity.key.in_(keys)))
