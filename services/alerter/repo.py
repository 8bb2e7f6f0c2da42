"""Alerts and rules: queries and transitions shared by the CLI and the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerter.netguard import AddressPolicy
from services.alerter.rules import RuleSpec, rule_context
from shared.db.models import INT4_MAX, Alert, AlertRule

TRANSITIONS = {"ack": ({"open"}, "acknowledged"), "resolve": ({"open", "acknowledged"}, "resolved")}


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


async def list_alerts(
    session: AsyncSession, *, status: str | None = None, entity: str | None = None, limit: int = 100
) -> list[Alert]:
    q = select(Alert).order_by(Alert.fired_at.desc()).limit(limit)
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
    if str(ref).isdigit() and int(ref) > INT4_MAX:
        raise NotFound(f"no rule {ref!r}")  # no such id can exist (PostgreSQL would refuse the number)
    q = (
        select(AlertRule).where(AlertRule.id == int(ref))
        if str(ref).isdigit()
        else select(AlertRule).where(AlertRule.name == str(ref))
    )
    rule = (await session.execute(q)).scalar()
    if rule is None:
        raise NotFound(f"no rule {ref!r}")
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
) -> AlertRule:
    """Apply changes, validated as a whole through :class:`RuleSpec`; new webhook hosts
    are checked under ``policy`` (default: no internal network allowed), the rule's
    current ones are kept as they are."""
    rule = await get_rule(session, ref)
    current = rule_to_dict(rule)
    current.pop("id")
    context = rule_context(policy or AddressPolicy(), kept=current.get("channels") or ())
    spec = RuleSpec.model_validate({**current, **changes}, context=context)
    await session.execute(update(AlertRule).where(AlertRule.id == rule.id).values(**spec.model_dump(mode="json")))
    await session.refresh(rule)
    return rule


async def delete_rule(session: AsyncSession, ref: str | int) -> None:
    rule = await get_rule(session, ref)
    await session.execute(delete(AlertRule).where(AlertRule.id == rule.id))
