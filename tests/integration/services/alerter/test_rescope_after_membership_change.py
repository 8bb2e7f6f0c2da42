"""A rule re-scoped after the watchlist took one of its entities out and back, before the
alerter evaluated the entity again, on the real database and Redis. The evaluation tells
a key whose cursor predates the entity's return by the scope's own watchlist times (a
group's ``group_since``, every entity's ``watched_since``); a new scope that reads weaker
times (a rule naming the entity reads none, every entity ignores group moves) no longer
saw that the cursor dates from before the entity left, so the key caught up over the
time it was out and paged about a spike from then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alert_scenario import T0, add_rule, timeline
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregator.persist import store_batch
from services.alerter import repo
from services.alerter.detect import MINUTE
from services.alerter.evaluate import Evaluator
from services.alerter.rules import Scope
from shared.db import watchlist
from shared.db.models import Alert, AlertState
from shared.entities import WatchedEntity
from shared.events import ScoredEvent

pytestmark = pytest.mark.integration
Sessions = async_sessionmaker[AsyncSession]


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


async def watch(sessions: Sessions, entity: str, group: str) -> None:
    await watchlist.upsert(sessions, [WatchedEntity(entity, entity.title(), group=group)])


async def mine(evaluator: Evaluator, entity: str, rule_id: int) -> list[str]:
    return [c.kind for c in await evaluator.evaluate("news", entity, "v1") if c.rule.id == rule_id]


async def cursor(sessions: Sessions, rule_id: int, entity: str) -> str | None:
    async with sessions() as s:
        q = select(AlertState.state).where(AlertState.rule_id == rule_id, AlertState.entity == entity)
        last: str | None = (await s.execute(q)).scalar_one().get("last_eval")
    return last


async def change(sessions: Sessions, rule_id: int, changes: dict[str, Any]) -> None:
    async with sessions.begin() as s:
        await repo.update_rule(s, rule_id, changes)


@pytest.mark.parametrize(
    "case",
    ["group-moved-out-and-back-then-named", "group-moved-out-and-back-then-all", "all-removed-and-back-then-named"],
)
async def test_a_rule_re_scoped_after_its_entity_left_and_came_back_does_not_catch_up_over_the_time_out(
    sessions: Sessions, evaluator: Evaluator, unique: str, case: str
) -> None:
    """The rule evaluated the entity (a cursor); the entity left the rule's coverage (moved
    to another group, or removed from the watchlist) while two hours with a spike were
    stored, came back, and the rule was re-scoped (to name the entity, or to every entity)
    before the alerter evaluated it again. Before, the key resumed from its old cursor and
    fired (and resolved) about the spike from while it was out; now it starts with the data
    stored after the change, and a later spike fires."""
    entity, group = f"RESC{unique}", f"resc{unique}"
    before, after = case.split("-then-")
    scope = Scope(group=group) if before.startswith("group") else Scope(all_entities=True)
    await watch(sessions, entity, group)
    rule_id = await add_rule(sessions, f"resc-{unique}", f"ELSE{unique}", scope=scope)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - 200 * MINUTE
    events = news(entity, start, 200, [(120, 126), (192, 200)])
    try:
        await store_batch(sessions, from_minute(events, start, 0, 59))
        assert await mine(evaluator, entity, rule_id) == []
        assert await cursor(sessions, rule_id, entity) == (start + 59 * MINUTE).isoformat()
        if before.startswith("group"):
            await watch(sessions, entity, f"other{unique}")
        else:
            assert await watchlist.remove(sessions, entity)
        await store_batch(sessions, from_minute(events, start, 60, 189))  # while out
        await watch(sessions, entity, group)  # back
        await change(
            sessions, rule_id, {"scope": {"entities": [entity]} if after == "named" else {"all_entities": True}}
        )

        assert await mine(evaluator, entity, rule_id) == []
        async with sessions() as s:
            assert (await s.execute(select(Alert.id).where(Alert.rule_id == rule_id))).first() is None
        assert await cursor(sessions, rule_id, entity) == (start + 189 * MINUTE).isoformat()

        await store_batch(sessions, from_minute(events, start, 190))  # the live spike
        assert await mine(evaluator, entity, rule_id) == ["fire"]
    finally:
        await change(sessions, rule_id, {"enabled": False})
        await watchlist.remove(sessions, entity)
