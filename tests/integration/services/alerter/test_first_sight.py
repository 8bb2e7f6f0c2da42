"""Where a rule's first evaluation of a key starts, and what its webhooks say, on the real
database and Redis: a rule created over stored history does not page about spikes that
were over before it existed; data stored after the rule (the demo's backfill) and an
alerter catching up after an outage are still walked minute by minute; an alert already
resolved or acknowledged when its webhooks are handed over says so, not ``open``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alert_scenario import LOCAL_POLICY, T0, Hook, add_rule, timeline
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregator.persist import store_batch
from services.alerter import repo
from services.alerter.deliver import Deliverer
from services.alerter.detect import MINUTE
from services.alerter.evaluate import Evaluator
from services.alerter.publish import notify_new
from services.alerter.rules import Scope
from shared.db import watchlist
from shared.db.models import Alert, AlertState
from shared.entities import WatchedEntity
from shared.events import ScoredEvent

pytestmark = pytest.mark.integration
Sessions = async_sessionmaker[AsyncSession]


def news(entity: str, start: datetime, minutes: int, spikes: list[tuple[int, int]]) -> list[ScoredEvent]:
    """:func:`alert_scenario.timeline` moved to begin at ``start``, counted under the
    entity alone (not under the stream's ``_all``, which the shipped rule watches)."""
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
    """The events of minutes ``first`` to ``last`` (inclusive; default: the end) of a timeline begun at ``start``."""
    lo, hi = start + first * MINUTE, start + ((last + 1) * MINUTE if last is not None else timedelta(days=1))
    return [e for e in events if lo <= e.event_time < hi]


def this_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


async def alerts_of(sessions: Sessions, rule_id: int) -> list[Alert]:
    async with sessions() as s:
        q = select(Alert).where(Alert.rule_id == rule_id).order_by(Alert.window_end)
        return list((await s.execute(q)).scalars())


async def cursor(sessions: Sessions, rule_id: int, entity: str) -> str | None:
    """The last minute the rule evaluated for the entity (its detector state's cursor)."""
    async with sessions() as s:
        q = select(AlertState.state).where(AlertState.rule_id == rule_id, AlertState.entity == entity)
        state = (await s.execute(q)).scalar_one()
    last: str | None = state.get("last_eval")
    return last


async def mine(evaluator: Evaluator, entity: str, rule_id: int) -> list[str]:
    """Evaluate the entity's news; the kinds of the rule's changes (other rules, the shipped
    ones among them, may cover it too)."""
    return [c.kind for c in await evaluator.evaluate("news", entity, "v1") if c.rule.id == rule_id]


async def disable(sessions: Sessions, *rule_ids: int) -> None:
    """Leave no enabled rule (or open alert) behind for the other tests."""
    for rule_id in rule_ids:
        async with sessions.begin() as s:
            await repo.update_rule(s, rule_id, {"enabled": False})


async def webhooks(sessions: Sessions, hook: Hook) -> list[tuple[str, str, str]]:
    """Hand the pending firings' webhooks over, as the alerter's loop does; (path, id, status) posted."""
    deliverer = Deliverer(sessions, b"k", timeout_s=2, max_attempts=1, backoff_s=0.1, policy=LOCAL_POLICY)
    try:
        await notify_new(sessions, deliverer)
        for _ in range(100):
            if not deliverer.in_flight:
                break
            await asyncio.sleep(0.1)
    finally:
        await deliverer.drain()
    return sorted((name, json.loads(body)["id"], json.loads(body)["status"]) for name, body, _ in hook.seen)


async def test_a_rule_created_over_stored_history_does_not_page_about_its_old_spikes(
    sessions: Sessions, evaluator: Evaluator, unique: str, hook: Hook
) -> None:
    """Six hours of news with a spike five hours ago are stored, then the rule is created.
    Before, its first evaluation walked the last 1,440 minutes: it fired and resolved an
    alert about that spike in one pass, and the webhook said ``open``. Now it starts at the
    latest minute; the history still gives the baselines, so a spike after that fires."""
    entity = f"OLD{unique}"
    start = this_minute() - 370 * MINUTE  # minutes 0 to 359 stored now, 360 to 369 "live" later
    events = news(entity, start, 370, [(60, 66), (362, 370)])
    await store_batch(sessions, from_minute(events, start, 0, 359))
    rule_id = await add_rule(sessions, f"old-{unique}", entity, channels=[{"url": hook.url("old")}])
    try:
        assert await mine(evaluator, entity, rule_id) == []
        assert await alerts_of(sessions, rule_id) == []
        assert await cursor(sessions, rule_id, entity) == (start + 359 * MINUTE).isoformat()
        assert await webhooks(sessions, hook) == []

        await store_batch(sessions, from_minute(events, start, 360))  # the live spike
        assert await mine(evaluator, entity, rule_id) == ["fire"]
        (alert,) = await alerts_of(sessions, rule_id)
        assert start + 362 * MINUTE < alert.window_end <= start + 370 * MINUTE
        assert await webhooks(sessions, hook) == [("old", alert.id, "open")]
    finally:
        await disable(sessions, rule_id)


async def test_a_late_event_in_an_old_minute_does_not_reopen_the_history_before_the_rule(
    sessions: Sessions, evaluator: Evaluator, unique: str
) -> None:
    """The rule is created over stored history, then a straggler lands in the minute of
    the old spike before the rule's first evaluation: that minute's data is new, but
    the minutes after it are not, so the evaluation still starts at the latest minute."""
    entity = f"LATE{unique}"
    start = this_minute() - 370 * MINUTE
    events = news(entity, start, 360, [(60, 66)])
    await store_batch(sessions, events)
    rule_id = await add_rule(sessions, f"late-{unique}", entity)
    straggler = events[-1].model_copy(update={"id": f"{entity}-late", "event_time": start + 63 * MINUTE})
    await store_batch(sessions, [straggler])
    try:
        assert await mine(evaluator, entity, rule_id) == []
        assert await alerts_of(sessions, rule_id) == []
        assert await cursor(sessions, rule_id, entity) == (start + 359 * MINUTE).isoformat()
    finally:
        await disable(sessions, rule_id)


async def test_history_stored_after_the_rule_is_walked_like_live_news(
    sessions: Sessions, evaluator: Evaluator, unique: str
) -> None:
    """The demo's case: the rules exist (seeded by the migration) before any data, and a
    backfill arrives with its event times in the past, here in one commit. It is walked
    minute by minute as before: its spike fires (and, over by the backfill's end,
    resolves), however many of its minutes the first commit held."""
    entity = f"FILL{unique}"
    rule_id = await add_rule(sessions, f"fill-{unique}", entity)
    start = this_minute() - 121 * MINUTE
    await store_batch(sessions, news(entity, start, 120, [(60, 66)]))
    try:
        assert await mine(evaluator, entity, rule_id) == ["fire", "resolve"]
        (alert,) = await alerts_of(sessions, rule_id)
        assert start + 60 * MINUTE < alert.window_end <= start + 66 * MINUTE
    finally:
        await disable(sessions, rule_id)


async def test_an_alerter_back_from_an_outage_catches_up_and_does_not_page_what_is_over(
    sessions: Sessions, evaluator: Evaluator, unique: str, hook: Hook
) -> None:
    """The rule has evaluated the entity (it has a cursor); then the alerter is down while
    two hours of news with a spike are stored. Back up, it catches up from its cursor as
    before: the spike fires and, over since, resolves in the same pass. Before, its
    webhook still went out as ``open`` (a page for a spike that is over); it now says
    ``resolved``, once."""
    entity = f"DOWN{unique}"
    rule_id = await add_rule(sessions, f"down-{unique}", entity, channels=[{"url": hook.url("down")}])
    start = this_minute() - 200 * MINUTE
    events = news(entity, start, 190, [(120, 126)])
    await store_batch(sessions, from_minute(events, start, 0, 59))
    try:
        assert await mine(evaluator, entity, rule_id) == []
        assert await cursor(sessions, rule_id, entity) == (start + 59 * MINUTE).isoformat()

        await store_batch(sessions, from_minute(events, start, 60))  # while the alerter was down
        assert await mine(evaluator, entity, rule_id) == ["fire", "resolve"]
        (alert,) = await alerts_of(sessions, rule_id)
        assert alert.status == "resolved" and start + 120 * MINUTE < alert.window_end <= start + 126 * MINUTE

        assert await webhooks(sessions, hook) == [("down", alert.id, "resolved")]
        (alert,) = await alerts_of(sessions, rule_id)
        assert alert.notified
    finally:
        await disable(sessions, rule_id)


async def test_a_webhook_carries_the_status_the_alert_has_when_handed_over(
    sessions: Sessions, evaluator: Evaluator, unique: str, hook: Hook
) -> None:
    """Two alerts fire; one is acknowledged (API, CLI) before the webhooks go out. Before,
    both were posted as ``open``; now the acknowledged one says so."""
    first, second = f"ONE{unique}", f"TWO{unique}"
    rule_ids = {}
    for entity in (first, second):
        rule_ids[entity] = await add_rule(
            sessions, f"{entity.lower()}-rule", entity, channels=[{"url": hook.url(entity.lower())}]
        )
    start = this_minute() - 71 * MINUTE
    try:
        for entity in (first, second):
            await store_batch(sessions, news(entity, start, 70, [(60, 70)]))
            assert await mine(evaluator, entity, rule_ids[entity]) == ["fire"]
        alerts = {entity: (await alerts_of(sessions, rule_ids[entity]))[0] for entity in (first, second)}
        async with sessions.begin() as s:
            await repo.transition(s, alerts[second].id, "ack")
        assert await webhooks(sessions, hook) == sorted(
            [(first.lower(), alerts[first].id, "open"), (second.lower(), alerts[second].id, "acknowledged")]
        )
    finally:
        await disable(sessions, *rule_ids.values())


async def widen(sessions: Sessions, rule_id: int, changes: dict[str, Any]) -> None:
    async with sessions.begin() as s:
        await repo.update_rule(s, rule_id, changes)


@pytest.mark.parametrize("how", ["entity-added", "all-entities", "group"])
async def test_a_key_a_widened_scope_covers_starts_with_the_data_stored_after_the_change(
    sessions: Sessions, evaluator: Evaluator, unique: str, how: str
) -> None:
    """The rule exists (watching another entity) while six hours of the entity's news with
    a spike five hours ago are stored; then its scope takes the entity in (named, every
    entity, or the entity's group). Before, the entity's first evaluation walked all that
    history (stored after the rule was created) and fired about the old spike; now it
    starts with what is stored after the change, like a new rule, and a later spike fires."""
    entity, group = f"WIDE{unique}", f"wide{unique}"
    await watchlist.upsert(sessions, [WatchedEntity(entity, entity.title(), group=group)])
    rule_id = await add_rule(sessions, f"wide-{unique}", f"ELSE{unique}")
    start = this_minute() - 370 * MINUTE
    events = news(entity, start, 370, [(60, 66), (362, 370)])
    await store_batch(sessions, from_minute(events, start, 0, 359))
    scope = {"entity-added": {"entities": [f"ELSE{unique}", entity]}, "all-entities": {"all_entities": True}}
    await widen(sessions, rule_id, {"scope": scope.get(how, {"group": group})})
    try:
        assert await mine(evaluator, entity, rule_id) == []
        assert await alerts_of(sessions, rule_id) == []
        assert await cursor(sessions, rule_id, entity) == (start + 359 * MINUTE).isoformat()

        await store_batch(sessions, from_minute(events, start, 360))  # the live spike
        assert await mine(evaluator, entity, rule_id) == ["fire"]
        (alert,) = await alerts_of(sessions, rule_id)
        assert start + 362 * MINUTE < alert.window_end <= start + 370 * MINUTE
    finally:
        await disable(sessions, rule_id)
        await watchlist.remove(sessions, entity)


async def test_a_key_covered_again_does_not_catch_up_over_the_time_it_was_out_of_scope(
    sessions: Sessions, evaluator: Evaluator, unique: str
) -> None:
    """The rule evaluated the entity (it has a cursor), then left it out of its scope
    while two hours with a spike were stored, then took it back. Before, the entity
    resumed from its old cursor and fired about the spike from while it was out."""
    entity = f"BACK{unique}"
    rule_id = await add_rule(sessions, f"back-{unique}", entity)
    start = this_minute() - 200 * MINUTE
    events = news(entity, start, 190, [(120, 126)])
    await store_batch(sessions, from_minute(events, start, 0, 59))
    try:
        assert await mine(evaluator, entity, rule_id) == []
        await widen(sessions, rule_id, {"scope": {"entities": [f"ELSE{unique}"]}})
        await store_batch(sessions, from_minute(events, start, 60))  # while out of scope
        await widen(sessions, rule_id, {"scope": {"entities": [f"ELSE{unique}", entity]}})
        assert await mine(evaluator, entity, rule_id) == []
        assert await alerts_of(sessions, rule_id) == []
        assert await cursor(sessions, rule_id, entity) == (start + 189 * MINUTE).isoformat()
    finally:
        await disable(sessions, rule_id)


async def test_a_re_enabled_rule_does_not_catch_up_over_the_time_it_was_disabled(
    sessions: Sessions, evaluator: Evaluator, unique: str
) -> None:
    """The rule evaluated the entity, then was disabled while two hours of news with a
    spike were stored, then enabled again. Before, it caught up from its cursor over the
    disabled time (fire and resolve: a page about a spike nobody watched for); now it
    starts with what is stored after the re-enabling, the disabled time as baseline, and
    a spike after that fires."""
    entity = f"AGAIN{unique}"
    rule_id = await add_rule(sessions, f"again-{unique}", entity)
    start = this_minute() - 200 * MINUTE
    events = news(entity, start, 200, [(120, 126), (192, 200)])
    await store_batch(sessions, from_minute(events, start, 0, 59))
    try:
        assert await mine(evaluator, entity, rule_id) == []
        await widen(sessions, rule_id, {"enabled": False})
        await store_batch(sessions, from_minute(events, start, 60, 189))  # while disabled
        await widen(sessions, rule_id, {"enabled": True})
        assert await mine(evaluator, entity, rule_id) == []
        assert await alerts_of(sessions, rule_id) == []
        assert await cursor(sessions, rule_id, entity) == (start + 189 * MINUTE).isoformat()

        await store_batch(sessions, from_minute(events, start, 190))  # the live spike
        assert await mine(evaluator, entity, rule_id) == ["fire"]
        (alert,) = await alerts_of(sessions, rule_id)
        assert start + 192 * MINUTE < alert.window_end <= start + 200 * MINUTE
    finally:
        await disable(sessions, rule_id)


@pytest.mark.parametrize("change", ["thresholds-and-name", "narrowed", "widened-elsewhere"])
async def test_a_key_still_covered_after_a_change_catches_up_from_where_it_stopped(
    sessions: Sessions, evaluator: Evaluator, unique: str, change: str
) -> None:
    """A change that keeps the entity covered (thresholds and name, another entity dropped
    from the scope or added to it) leaves its cursor alone: as after an outage, the
    evaluation after it catches up over the two hours stored meanwhile."""
    entity, other = f"KEPT{unique}", f"ELSE{unique}"
    rule_id = await add_rule(sessions, f"kept-{unique}", entity, scope=Scope(entities=[entity, other]))
    start = this_minute() - 200 * MINUTE
    events = news(entity, start, 190, [(120, 126)])
    await store_batch(sessions, from_minute(events, start, 0, 59))
    changes: dict[str, Any] = {
        "thresholds-and-name": {"abs_threshold": 0.4, "name": f"renamed-{unique}"},
        "narrowed": {"scope": {"entities": [entity]}},
        "widened-elsewhere": {"scope": {"entities": [entity, other, f"MORE{unique}"]}},
    }[change]
    try:
        assert await mine(evaluator, entity, rule_id) == []
        await store_batch(sessions, from_minute(events, start, 60))  # before the change's evaluation
        await widen(sessions, rule_id, changes)
        assert await mine(evaluator, entity, rule_id) == ["fire", "resolve"]
    finally:
        await disable(sessions, rule_id)


async def watch(sessions: Sessions, entity: str, group: str | None) -> None:
    """Add the entity to the watchlist, or replace its entry (as the API's PUT, the CLI's import)."""
    await watchlist.upsert(sessions, [WatchedEntity(entity, entity.title(), group=group)])


def watchlist_scope(how: str, group: str) -> Scope:
    return Scope(all_entities=True) if how.startswith("all-entities") else Scope(group=group)


@pytest.mark.parametrize("how", ["all-entities-added", "group-added", "group-moved-in"])
async def test_an_entity_the_watchlist_brings_into_a_rule_starts_with_the_data_stored_after(
    sessions: Sessions, evaluator: Evaluator, unique: str, how: str
) -> None:
    """The rule (over every entity, or a group) exists while six hours of an entity's news
    with a spike five hours ago are stored; then the watchlist brings the entity in (added,
    or moved into the group from another). Before, its first evaluation started from the
    rule's ``covered_since`` (before all that history) and fired about the old spike; now
    it starts with what is stored after the entity came in, like a new rule, and a later
    spike fires."""
    entity, group = f"JOIN{unique}", f"join{unique}"
    if how == "group-moved-in":
        await watch(sessions, entity, f"other{unique}")
    rule_id = await add_rule(sessions, f"join-{unique}", f"ELSE{unique}", scope=watchlist_scope(how, group))
    start = this_minute() - 370 * MINUTE
    events = news(entity, start, 370, [(60, 66), (362, 370)])
    await store_batch(sessions, from_minute(events, start, 0, 359))
    try:
        await watch(sessions, entity, group)
        assert await mine(evaluator, entity, rule_id) == []
        assert await alerts_of(sessions, rule_id) == []
        assert await cursor(sessions, rule_id, entity) == (start + 359 * MINUTE).isoformat()

        await store_batch(sessions, from_minute(events, start, 360))  # the live spike
        assert await mine(evaluator, entity, rule_id) == ["fire"]
        (alert,) = await alerts_of(sessions, rule_id)
        assert start + 362 * MINUTE < alert.window_end <= start + 370 * MINUTE
    finally:
        await disable(sessions, rule_id)
        await watchlist.remove(sessions, entity)


@pytest.mark.parametrize("how", ["all-entities-removed", "group-removed", "group-moved-out"])
async def test_an_entity_back_on_the_watchlist_does_not_catch_up_over_the_time_it_was_out(
    sessions: Sessions, evaluator: Evaluator, unique: str, how: str
) -> None:
    """The rule evaluated the entity (it has a cursor); then the entity left the rule's
    coverage (removed from the watchlist, or moved to another group) while two hours with
    a spike were stored, then came back. Before, it resumed from its old cursor and fired
    (and resolved) about the spike from while it was out; now it starts with what is
    stored after it came back, and a later spike fires."""
    entity, group = f"RET{unique}", f"ret{unique}"
    await watch(sessions, entity, group)
    rule_id = await add_rule(sessions, f"ret-{unique}", f"ELSE{unique}", scope=watchlist_scope(how, group))
    start = this_minute() - 200 * MINUTE
    events = news(entity, start, 200, [(120, 126), (192, 200)])
    await store_batch(sessions, from_minute(events, start, 0, 59))
    try:
        assert await mine(evaluator, entity, rule_id) == []
        assert await cursor(sessions, rule_id, entity) == (start + 59 * MINUTE).isoformat()
        if how == "group-moved-out":
            await watch(sessions, entity, f"other{unique}")
        else:
            assert await watchlist.remove(sessions, entity)
        await store_batch(sessions, from_minute(events, start, 60, 189))  # while out
        await watch(sessions, entity, group)
        assert await mine(evaluator, entity, rule_id) == []
        assert await alerts_of(sessions, rule_id) == []
        assert await cursor(sessions, rule_id, entity) == (start + 189 * MINUTE).isoformat()

        await store_batch(sessions, from_minute(events, start, 190))  # the live spike
        assert await mine(evaluator, entity, rule_id) == ["fire"]
        (alert,) = await alerts_of(sessions, rule_id)
        assert start + 192 * MINUTE < alert.window_end <= start + 200 * MINUTE
    finally:
        await disable(sessions, rule_id)
        await watchlist.remove(sessions, entity)


@pytest.mark.parametrize("change", ["group-move-under-all-entities", "same-group-replaced", "named-and-re-added"])
async def test_a_watchlist_change_that_keeps_the_entity_covered_leaves_its_cursor_alone(
    sessions: Sessions, evaluator: Evaluator, unique: str, change: str
) -> None:
    """A watchlist change that does not take the entity out of the rule's coverage (a group
    move under a rule over every entity, the entry replaced in the same group, the entity
    removed and added again under a rule naming it, which covers it watched or not) keeps
    its cursor: as after an outage, the next evaluation catches up over the two hours
    stored meanwhile, spike included."""
    entity, group = f"STAY{unique}", f"stay{unique}"
    scope = {
        "group-move-under-all-entities": Scope(all_entities=True),
        "same-group-replaced": Scope(group=group),
        "named-and-re-added": Scope(entities=[entity]),
    }[change]
    await watch(sessions, entity, group)
    rule_id = await add_rule(sessions, f"stay-{unique}", entity, scope=scope)
    start = this_minute() - 200 * MINUTE
    events = news(entity, start, 190, [(120, 126)])
    await store_batch(sessions, from_minute(events, start, 0, 59))
    try:
        assert await mine(evaluator, entity, rule_id) == []
        await store_batch(sessions, from_minute(events, start, 60))  # before the change's evaluation
        if change == "group-move-under-all-entities":
            await watch(sessions, entity, f"other{unique}")
        elif change == "same-group-replaced":
            await watchlist.upsert(sessions, [WatchedEntity(entity, "Renamed", aliases=("rn",), group=group)])
        else:
            assert await watchlist.remove(sessions, entity)
            await watch(sessions, entity, group)
        assert await mine(evaluator, entity, rule_id) == ["fire", "resolve"]
    finally:
        await disable(sessions, rule_id)
        await watchlist.remove(sessions, entity)
