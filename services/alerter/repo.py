"""Alerts and rules: queries and transitions shared by the CLI and the API."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, delete, func, literal, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter import store
from services.alerter.evaluate import in_scope
from services.alerter.netguard import AddressPolicy
from services.alerter.rules import RuleSpec, collapse_channels, rule_context
from services.alerter.store import Watched
from shared.db.models import INT4_MAX, Alert, AlertRule, AlertState

TRANSITIONS = {"ack": ({"open"}, "acknowledged"), "resolve": ({"open", "acknowledged"}, "resolved")}
RULE_ID = re.compile(r"[0-9]+")
"""A rule reference of ASCII digits is an id; any other is a name (names cannot be all digits)."""


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


class Ambiguous(ValueError):
    """A reference that is both an id and a rule's name (stored before all-digit names were refused)."""


@dataclass(frozen=True)
class RuleUpdate:
    rule: AlertRule
    resolved: list[str]
    """The ids of the open alerts the rule no longer evaluates, resolved by this update."""
    warnings: list[str] = field(default_factory=list)
    """What the update changed that it was not asked to: a channel the stored rule listed
    twice (saved before that was refused), now listed once. URLs masked."""


async def list_alerts(
    session: AsyncSession, *, status: str | None = None, entity: str | None = None, limit: int = 100
) -> list[Alert]:
    """Alerts newest first, ordered as ``GET /v1/alerts`` orders them (fired_at, then id, both
    descending: alerts fired at the same instant come in one order every time). ``status`` is
    not checked here: the CLI refuses one no alert can have (``tonewatch alerts list``)."""
    q = select(Alert).order_by(Alert.fired_at.desc(), Alert.id.desc()).limit(limit)
    if status:
        q = q.where(Alert.status == status)
    if entity:
        q = q.where(Alert.entity == entity)
    return list((await session.execute(q)).scalars())


async def get_alert(session: AsyncSession, alert_id: str) -> tuple[Alert, str | None]:
    """An alert and its rule's name; :class:`NotFound` when there is none."""
    query = select(Alert, AlertRule.name).outerjoin(AlertRule, AlertRule.id == Alert.rule_id)
    row = (await session.execute(query.where(Alert.id == alert_id))).one_or_none()
    if row is None:
        raise NotFound(f"no alert {alert_id!r}")
    return row[0], row[1]


async def transition(session: AsyncSession, alert_id: str, action: str) -> Alert:
    """``ack`` or ``resolve`` an alert; :class:`NotFound` or :class:`Conflict` on bad requests."""
    allowed, target = TRANSITIONS[action]
    alert = await session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise NotFound(f"no alert {alert_id!r}")
    if alert.status not in allowed:
        raise Conflict(f"cannot {action} an alert that is {alert.status}")
    now = datetime.now(UTC)
    alert.status = target
    if target == "acknowledged":
        alert.acknowledged_at = now
    else:
        alert.resolved_at = now
    return alert


def rule_to_dict(rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "stream": rule.stream,
        "scope": rule.scope,
        "window_s": rule.window_s,
        "min_volume": rule.min_volume,
        "abs_threshold": rule.abs_threshold,
        "z_threshold": rule.z_threshold,
        "baseline": rule.baseline,
        "severity": rule.severity,
        "cooldown_s": rule.cooldown_s,
        "resolve_after_s": rule.resolve_after_s,
        "channels": rule.channels,
        "enabled": rule.enabled,
    }


async def list_rules(session: AsyncSession) -> list[AlertRule]:
    return list((await session.execute(select(AlertRule).order_by(AlertRule.id))).scalars())


async def get_rule(session: AsyncSession, ref: str | int) -> AlertRule:
    """The rule ``ref`` names: an ``int`` is an id (the API's); text (the CLI's) is an id
    when it is ASCII digits, else a name. Digits that are also a rule's name (a rule stored
    before such names were refused) are :class:`Ambiguous`, never guessed either way."""
    if isinstance(ref, str) and not RULE_ID.fullmatch(ref):
        return await _found(session, select(AlertRule).where(AlertRule.name == ref), ref)
    if isinstance(ref, str):
        await _refuse_ambiguous(session, ref)
    if int(ref) > INT4_MAX:
        raise NotFound(f"no rule {ref!r}")  # no such id can exist (PostgreSQL would refuse the number)
    return await _found(session, select(AlertRule).where(AlertRule.id == int(ref)), ref)


async def _found(session: AsyncSession, query: Any, ref: str | int) -> AlertRule:
    rule: AlertRule | None = (await session.execute(query)).scalar()
    if rule is None:
        raise NotFound(f"no rule {ref!r}")
    return rule


async def _refuse_ambiguous(session: AsyncSession, ref: str) -> None:
    named = (await session.execute(select(AlertRule.id).where(AlertRule.name == ref))).scalar()
    if named is not None:
        raise Ambiguous(
            f"{ref!r} is ambiguous: it is a rule id and the name of rule {named}; refer to that rule by its id "
            f"and rename it (tonewatch alerts rules update {named} --set name=NEW: names cannot be all digits)"
        )


async def lock_rule(session: AsyncSession, ref: str | int) -> AlertRule:
    """The rule, locked for this transaction, with its detector states: those first, as the
    alerter takes them (a state, then the rule's row when it inserts an alert), so an
    evaluation of the rule in flight commits first (its alerts are seen here) and the next
    one waits for this transaction (it finds the rule as changed here)."""
    rule = await get_rule(session, ref)
    states = select(AlertState.entity).where(AlertState.rule_id == rule.id)
    await session.execute(states.order_by(AlertState.entity, AlertState.model_version).with_for_update())
    await session.refresh(rule, with_for_update=True)
    return rule


async def create_rule(session: AsyncSession, spec: RuleSpec) -> AlertRule:
    rule = AlertRule(**spec.model_dump(mode="json"))
    session.add(rule)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a rule named {spec.name!r} exists") from exc
    return rule


async def update_rule(
    session: AsyncSession, ref: str | int, changes: dict[str, Any], policy: AddressPolicy | None = None
) -> RuleUpdate:
    """Apply changes, validated as a whole through :class:`RuleSpec`; new webhook hosts
    are checked under ``policy`` (default: no internal network allowed), the rule's
    current ones are kept as they are. The rule is locked first, so concurrent updates of
    different fields both apply. Open alerts the rule no longer evaluates (it is disabled,
    or its stream or scope no longer covers their entity) are resolved: nothing else would
    ever resolve them.

    Coverage: a rule enabled again, or whose stream or scope may now cover an entity it
    did not (:func:`widens`), gets a new ``covered_since`` (this transaction's time), and
    the keys it covers anew forget where their evaluation stopped (every key it covers,
    when it is enabled again): their next evaluation is a first sight, which starts with the data
    stored after the change, as for a new rule. So it does not page about spikes from
    while it was disabled, or before it covered the entity. So does a change after which a
    key's cursor, older than the entity's return to the old scope (moved out of the group
    and back, removed or made inactive and back), would no longer be told stale by the
    evaluation (see :func:`_restart_keys`). Narrowing the scope, renaming
    the rule or changing its thresholds, severity or channels keep both.

    A rule stored listing a channel twice (before that was refused) can be changed: unless
    ``changes`` sets ``channels`` (then a repeat is refused, as on create), its channels are
    saved with each listed once, and :attr:`RuleUpdate.warnings` says so."""
    rule = await lock_rule(session, ref)
    before = AlertRule(stream=rule.stream, scope=rule.scope, enabled=rule.enabled)
    current = rule_to_dict(rule)
    current.pop("id")
    warnings: list[str] = []
    if "channels" not in changes and isinstance(current.get("channels"), list):
        current["channels"], warnings = collapse_channels(current["channels"])
    context = rule_context(policy or AddressPolicy(), kept=current.get("channels") or ())
    spec = RuleSpec.model_validate({**current, **changes}, context=context)
    values = spec.model_dump(mode="json")
    groups = await store.entity_groups(session)
    after = AlertRule(stream=spec.stream, scope=values["scope"], enabled=spec.enabled)
    restarted = spec.enabled and not before.enabled
    if restarted or widens(before, after, groups):
        values["covered_since"] = func.now()
    try:
        await session.execute(update(AlertRule).where(AlertRule.id == rule.id).values(**values))
    except IntegrityError as exc:
        raise Conflict(f"a rule named {spec.name!r} exists") from exc
    await session.refresh(rule)
    if rule.enabled and await _restart_keys(session, rule, None if restarted else before, groups):
        if "covered_since" not in values:
            # a key restarted because the new scope no longer tells its cursor is stale
            # (see _restart_keys): as for a widening, it starts with the data stored from now
            await session.execute(update(AlertRule).where(AlertRule.id == rule.id).values(covered_since=func.now()))
            await session.refresh(rule)
    return RuleUpdate(rule, await _resolve_unevaluated(session, rule), warnings)


def _covers(scope: dict[str, Any] | None) -> tuple[frozenset[str], str | None, bool]:
    """A stored scope as (entities, group, all_entities), whatever keys it spells out."""
    scope = scope or {}
    return frozenset(scope.get("entities") or ()), scope.get("group") or None, bool(scope.get("all_entities"))


def widens(old: AlertRule, new: AlertRule, groups: dict[str, str | None]) -> bool:
    """Whether ``new`` (a rule's stream and scope as changed) may cover an entity ``old``
    did not; ``groups``: the watchlist. Named entities are judged one by one against the
    old scope (with the entities' current groups); a group or every entity widens unless
    the old scope was every entity (or the same group): either may gain members later."""
    if new.stream != old.stream:
        return True
    old_entities, old_group, old_all = _covers(old.scope)
    entities, group, every = _covers(new.scope)
    if entities:
        return any(not in_scope(old, new.stream, e, groups) for e in entities)
    if old_all:
        return False
    return every or group != old_group or bool(old_entities)


def _joined(scope: dict[str, Any] | None, watched: Watched | None) -> datetime | None:
    """Since when the watchlist puts an entity in a scope, as the evaluation reads it
    (``Evaluator._current``): a group's the later of ``watched_since`` and ``group_since``,
    every entity's ``watched_since``; ``None`` for a scope naming its entities (or an
    entity not watched)."""
    entities, group, every = _covers(scope)
    if watched is None or entities or not (group or every):
        return None
    return max(watched.watched_since, watched.group_since) if group else watched.watched_since


async def _restart_keys(
    session: AsyncSession, rule: AlertRule, before: AlertRule | None, groups: dict[str, str | None]
) -> bool:
    """Make the next evaluation of the keys ``rule`` covers anew a first sight: their
    detector states (locked by :func:`lock_rule`) forget the last minute evaluated, which
    dates from before (when the rule was disabled, or did not cover them), so the
    evaluation does not walk on from there over the minutes in between. ``before``: the
    rule's stream and scope before the change; ``None``: the rule was enabled again, every
    key it covers restarts. The rest of the state (the cooldown of the last firing) is kept.

    A key the old scope covers is restarted too when its cursor predates the entity's
    return to the old scope (moved out of the group and back, removed and added again,
    made active again: the evaluation would have restarted it, see
    :mod:`services.alerter.evaluate`) and the new scope no longer tells (a rule naming the
    entity reads no watchlist times, one over every entity no group moves). True when such
    a key was restarted: the caller moves ``covered_since`` on, so it starts with the data
    stored from now, not the time it was out."""
    rows = (
        await session.execute(
            select(AlertState.entity, AlertState.model_version, AlertState.updated_at).where(
                AlertState.rule_id == rule.id, AlertState.state["last_eval"].as_string().is_not(None)
            )
        )
    ).tuples()
    keys = [(entity, version, saved) for entity, version, saved in rows if in_scope(rule, rule.stream, entity, groups)]
    watched = await store.watched_entries(session, {entity for entity, _, _ in keys}) if before is not None else {}
    anew: set[tuple[str, str]] = set()
    stale = False
    for entity, version, saved in keys:
        if before is None or not in_scope(before, rule.stream, entity, groups):
            anew.add((entity, version))
            continue
        old, new = _joined(before.scope, watched.get(entity)), _joined(rule.scope, watched.get(entity))
        if old is not None and saved < old and not (new is not None and saved < new):
            anew.add((entity, version))
            stale = True
    if anew:  # one statement: a re-enabled rule over every entity may have thousands of keys
        await session.execute(
            update(AlertState)
            .where(AlertState.rule_id == rule.id, tuple_(AlertState.entity, AlertState.model_version).in_(sorted(anew)))
            .values(state=AlertState.state.op("-")(literal("last_eval", String)), updated_at=func.now())
        )
    return stale


async def _resolve_unevaluated(session: AsyncSession, rule: AlertRule) -> list[str]:
    """Resolve the rule's open (or acknowledged) alerts it no longer evaluates, as the
    alerter resolves (the outbox announces it on the ``alerts`` topic), and clear them from
    their detector states, so the rule fires afresh if it covers the entity again."""
    alerts = list(
        (await session.execute(select(Alert).where(Alert.rule_id == rule.id, Alert.status != "resolved"))).scalars()
    )
    groups = await store.entity_groups(session) if alerts and rule.enabled else {}
    gone = [a for a in alerts if not (rule.enabled and in_scope(rule, a.stream, a.entity, groups))]
    now = datetime.now(UTC)
    for alert in gone:
        await store.resolve_alert(session, alert.id, now)
        state = await store.lock_state(session, rule.id, alert.entity, alert.model_version)
        if state is not None and state.open_alert == alert.id:
            # forgets its last evaluated minute too: covered again later, the key starts
            # afresh (a first sight), never walks on from before it left the rule's scope
            cleared = replace(state, open_alert=None, below_since=None, last_eval=None)
            await store.save_state(session, rule.id, alert.entity, alert.model_version, cleared)
    return [a.id for a in gone]


async def resolve_uncovered(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    """Resolve, as :func:`update_rule` does, the open (or acknowledged) alerts whose rule no
    longer covers their entity: above all because the entity left the rule's group
    (moved, or the group emptied) or the watchlist (removed, or made inactive), which the
    rule's own updates never see. Membership is written by whatever changes the watchlist
    (the CLI, the API, an import, ``entities.active`` set by hand), so the alerter's sweep
    checks here, against what is stored: one read of the open alerts, then a locked pass
    only over the rules with such an alert."""
    async with sessions() as session:
        keys = select(Alert.rule_id, Alert.stream, Alert.entity).where(Alert.status != "resolved").distinct()
        rows = (await session.execute(keys)).tuples().all()
        if not rows:
            return []
        rules = await session.execute(select(AlertRule).where(AlertRule.id.in_({r for r, _, _ in rows})))
        by_id = {rule.id: rule for rule in rules.scalars()}
        groups = await store.entity_groups(session)
    uncovered = {
        rule_id
        for rule_id, stream, entity in rows
        if rule_id in by_id and not (by_id[rule_id].enabled and in_scope(by_id[rule_id], stream, entity, groups))
    }
    resolved: list[str] = []
    for rule_id in sorted(uncovered):
        try:
            async with sessions.begin() as session:
                resolved += await _resolve_unevaluated(session, await lock_rule(session, rule_id))
        except NotFound:
            continue  # deleted meanwhile, with its alerts
    return resolved


async def delete_rule(session: AsyncSession, ref: str | int) -> None:
    """Delete a rule with its alerts (a cascade). Refused (:class:`Conflict`) while any of
    its alerts is open or has a status change not yet announced on the ``alerts`` topic:
    the outbox announces only alerts that still exist, so consumers would never hear
    those alerts close. Disabling the rule resolves its open alerts."""
    rule = await lock_rule(session, ref)
    counted = select(func.count()).select_from(Alert).where(Alert.rule_id == rule.id)
    unresolved = (await session.execute(counted.where(Alert.status != "resolved"))).scalar_one()
    if unresolved:
        raise Conflict(
            f"rule {rule.id} {rule.name} has {unresolved} open alert(s): disable it first (that resolves them "
            "and announces it on the alerts topic), then delete it"
        )
    pending = (await session.execute(counted.where(Alert.announced_status.is_distinct_from(Alert.status)))).scalar_one()
    if pending:
        raise Conflict(
            f"rule {rule.id} {rule.name} has {pending} alert status change(s) not yet announced on the alerts "
            "topic (the alerter announces them within about a second while the broker is up): delete it once "
            "they are"
        )
    await session.execute(delete(AlertRule).where(AlertRule.id == rule.id))
