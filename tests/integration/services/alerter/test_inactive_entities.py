"""An inactive entity (``entities.active`` false) under the alerter, on the real database
and Redis: the user's case is "I took ACME off the watchlist and still get paged about
ACME". The classifier stops tagging an inactive entity, but what it tagged before (the
scored topic's backlog, a replay) is still counted: rules over a group or every entity
no longer evaluate it, their open alerts about it are resolved by the sweep's check (as
for an entity removed from the watchlist), and made active again it starts with the data
stored after that (``entities.watched_since``). A rule naming the entity covers it
watched or not, inactive too.

Nothing in tonewatch writes ``active = false`` today (``DELETE /v1/entities/{key}`` and
``tonewatch entities remove`` delete the row; an import only adds or replaces entries,
active): the column is set by hand, as here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alert_scenario import T0, add_rule, timeline
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregator.persist import store_batch
from services.alerter import repo
from services.alerter.detect import MINUTE
from services.alerter.evaluate import Evaluator, Snapshot
from services.alerter.rules import Scope
from services.api.routes_entities import open_alert_counts
from shared.db import watchlist
from shared.db.models import Alert, AlertState, Entity
from shared.entities import WatchedEntity
from shared.events import ScoredEvent

pytestmark = pytest.mark.integration
Sessions = async_sessionmaker[AsyncSession]
WATCHLIST_SCOPES = ["all-entities", "group"]


def news(entity: str, start: datetime, minutes: int, spikes: list[tuple[int, int]]) -> list[ScoredEvent]:
    """:func:`alert_scenario.timeline` moved to begin at ``start``, under the entity alone."""
    return [
        e.model_copy(
            update={
                "event_time": e.event_time - T0 + start,
                "received_time": e.received_time - T0 + start,
                "entities": [entity],
            }
        )
        for e in timeline(entity, minutes, spikes)
    ]


def from_minute(events: list[ScoredEvent], start: datetime, first: int, last: int | None = None) -> list[ScoredEvent]:
    lo, hi = start + first * MINUTE, start + ((last + 1) * MINUTE if last is not None else timedelta(days=1))
    return [e for e in events if lo <= e.event_time < hi]


def this_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


async def watch(sessions: Sessions, entity: str, group: str) -> None:
    """Add the entity, or make it active again (the API's PUT, the CLI's add and import)."""
    await watchlist.upsert(sessions, [WatchedEntity(entity, entity.title(), group=group)])


async def deactivate(sessions: Sessions, entity: str) -> None:
    async with sessions.begin() as s:
        await s.execute(update(Entity).where(Entity.key == entity).values(active=False))


async def mine(evaluator: Evaluator, entity: str, rule_id: int, snap: Snapshot | None = None) -> list[str]:
    return [c.kind for c in await evaluator.evaluate("news", entity, "v1", snap) if c.rule.id == rule_id]


async def alerts_of(sessions: Sessions, rule_id: int) -> list[tuple[str, str]]:
    async with sessions() as s:
        q = select(Alert.id, Alert.status).where(Alert.rule_id == rule_id).order_by(Alert.window_end)
        return list((await s.execute(q)).tuples())


async def state_of(sessions: Sessions, rule_id: int, entity: str) -> dict[str, str | None]:
    async with sessions() as s:
        q = select(AlertState.state).where(AlertState.rule_id == rule_id, AlertState.entity == entity)
        state: dict[str, str | None] = (await s.execute(q)).scalar_one()
    return state


async def listed_open(sessions: Sessions, entity: str) -> int:
    """The open alerts ``GET /v1/entities`` lists for the entity."""
    async with sessions() as s:
        return (await open_alert_counts(s, "news")).get(entity, 0)


async def watchlist_rule(sessions: Sessions, unique: str, how: str, group: str) -> int:
    scope = Scope(all_entities=True) if how == "all-entities" else Scope(group=group)
    return await add_rule(sessions, f"inactive-{how}-{unique}", f"ELSE{unique}", scope=scope)


async def cleanup(sessions: Sessions, rule_id: int, entity: str) -> None:
    """Disable the rule (an all-entities rule would cover every later test's watchlist; it
    resolves what is open) and remove the entity."""
    async with sessions.begin() as s:
        await repo.update_rule(s, rule_id, {"enabled": False})
    await watchlist.remove(sessions, entity)


@pytest.mark.parametrize("how", WATCHLIST_SCOPES)
async def test_an_entity_made_inactive_is_not_evaluated_by_watchlist_rules(
    sessions: Sessions, evaluator: Evaluator, unique: str, how: str
) -> None:
    """The rule evaluated the entity; the entity is made inactive, then news about it
    tagged before that (with a spike) is counted. Before, the rule went on evaluating it
    and fired: a page about an entity off the watchlist. Now nothing fires."""
    entity, group = f"ACME{unique}", f"grp{unique}"
    await watch(sessions, entity, group)
    rule_id = await watchlist_rule(sessions, unique, how, group)
    start = this_minute() - 200 * MINUTE
    events = news(entity, start, 200, [(192, 200)])
    try:
        await store_batch(sessions, from_minute(events, start, 0, 59))
        assert await mine(evaluator, entity, rule_id) == []
        await deactivate(sessions, entity)
        await store_batch(sessions, from_minute(events, start, 60))  # tagged before, counted after
        assert await mine(evaluator, entity, rule_id) == []
        assert await alerts_of(sessions, rule_id) == []
    finally:
        await cleanup(sessions, rule_id, entity)


@pytest.mark.parametrize("how", WATCHLIST_SCOPES)
async def test_the_open_alert_of_an_entity_made_inactive_is_resolved_and_it_pages_no_more(
    sessions: Sessions, evaluator: Evaluator, unique: str, how: str
) -> None:
    """ "I took ACME off the watchlist and still get paged about ACME": the rule's alert
    about the entity is open, the entity is made inactive while the spike goes on. Before,
    the sweep's check left the alert open (the API listed it as open against the entity)
    and the rule kept evaluating the entity; now the check resolves it and clears it from
    the detector state, as for an entity removed from the watchlist, and the spike's
    later minutes fire nothing."""
    entity, group = f"ACME{unique}", f"grp{unique}"
    await watch(sessions, entity, group)
    rule_id = await watchlist_rule(sessions, unique, how, group)
    start = this_minute() - 200 * MINUTE
    events = news(entity, start, 200, [(182, 200)])
    try:
        await store_batch(sessions, from_minute(events, start, 0, 189))
        assert await mine(evaluator, entity, rule_id) == ["fire"]
        ((alert_id, _),) = await alerts_of(sessions, rule_id)
        assert await listed_open(sessions, entity) == 1

        await deactivate(sessions, entity)
        assert alert_id in await repo.resolve_uncovered(sessions)

        assert await alerts_of(sessions, rule_id) == [(alert_id, "resolved")]
        assert await listed_open(sessions, entity) == 0
        state = await state_of(sessions, rule_id, entity)
        assert (state["open_alert"], state["last_eval"]) == (None, None)
        await store_batch(sessions, from_minute(events, start, 190))  # the spike goes on
        assert await mine(evaluator, entity, rule_id) == []
        assert await alerts_of(sessions, rule_id) == [(alert_id, "resolved")]
    finally:
        await cleanup(sessions, rule_id, entity)


async def test_a_pass_that_read_the_watchlist_before_the_deactivation_fires_nothing(
    sessions: Sessions, evaluator: Evaluator, unique: str
) -> None:
    """The pass reads the rules and the watchlist, then the entity is made inactive
    (committed), then the pass evaluates it: the watchlist entry, rechecked as committed,
    no longer puts it in the rule's scope. Before, the rule fired from the pass's copy."""
    entity, group = f"RACE{unique}", f"grp{unique}"
    await watch(sessions, entity, group)
    rule_id = await watchlist_rule(sessions, unique, "group", group)
    start = this_minute() - 200 * MINUTE
    try:
        await store_batch(sessions, news(entity, start, 190, [(182, 190)]))
        snap = await evaluator.snapshot()
        assert entity in snap.groups
        await deactivate(sessions, entity)
        assert await mine(evaluator, entity, rule_id, snap) == []
        assert await alerts_of(sessions, rule_id) == []
    finally:
        await cleanup(sessions, rule_id, entity)


@pytest.mark.parametrize("how", WATCHLIST_SCOPES)
async def test_an_entity_made_active_again_starts_with_the_data_stored_after(
    sessions: Sessions, evaluator: Evaluator, unique: str, how: str
) -> None:
    """The rule evaluated the entity; it was inactive while two hours with a spike were
    stored (and evaluated: nothing), then made active again (PUT, add, import). Its
    evaluation starts with the data stored after that (``watched_since``), not from its
    old cursor: no page about the spike from while it was inactive; a later spike fires."""
    entity, group = f"BACK{unique}", f"grp{unique}"
    await watch(sessions, entity, group)
    rule_id = await watchlist_rule(sessions, unique, how, group)
    start = this_minute() - 200 * MINUTE
    events = news(entity, start, 200, [(120, 126), (192, 200)])
    try:
        await store_batch(sessions, from_minute(events, start, 0, 59))
        assert await mine(evaluator, entity, rule_id) == []
        assert (await state_of(sessions, rule_id, entity))["last_eval"] == (start + 59 * MINUTE).isoformat()
        await deactivate(sessions, entity)
        await store_batch(sessions, from_minute(events, start, 60, 189))  # while inactive
        assert await mine(evaluator, entity, rule_id) == []
        await watch(sessions, entity, group)  # active again
        assert await mine(evaluator, entity, rule_id) == []
        assert await alerts_of(sessions, rule_id) == []
        assert (await state_of(sessions, rule_id, entity))["last_eval"] == (start + 189 * MINUTE).isoformat()

        await store_batch(sessions, from_minute(events, start, 190))  # the live spike
        assert await mine(evaluator, entity, rule_id) == ["fire"]
    finally:
        await cleanup(sessions, rule_id, entity)


async def test_a_rule_naming_an_inactive_entity_still_evaluates_it(
    sessions: Sessions, evaluator: Evaluator, unique: str
) -> None:
    """A rule naming its entities covers them watched or not (as after a removal): made
    inactive, the entity is still evaluated by it, and its open alert is left to the
    detector (it resolves once the spike is over, or the key goes quiet)."""
    entity = f"NAMED{unique}"
    await watch(sessions, entity, f"grp{unique}")
    rule_id = await add_rule(sessions, f"inactive-named-{unique}", entity)
    start = this_minute() - 200 * MINUTE
    try:
        await deactivate(sessions, entity)
        await store_batch(sessions, news(entity, start, 190, [(182, 190)]))
        assert await mine(evaluator, entity, rule_id) == ["fire"]
        ((alert_id, _),) = await alerts_of(sessions, rule_id)
        assert alert_id not in await repo.resolve_uncovered(sessions)
        assert await alerts_of(sessions, rule_id) == [(alert_id, "open")]
    finally:
        await cleanup(sessions, rule_id, entity)
