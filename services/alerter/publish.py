"""Alert outbox: the ``alerts`` table is the record; the ``alerts`` topic hears every
change at least once, in order per alert.

A fired alert is handed to the webhook deliverer once (``notified`` is claimed before
the hand-over) by the evaluation loop itself, right after the firing is committed:
webhooks wait for neither the broker nor the ``alerts`` topic. A loop of its own (so a
produce stuck on a broker outage delays neither evaluation nor webhooks) produces the
firing as ``open``, and every later status the alert went through (``acknowledged``,
``resolved``; by the alerter, the API or the CLI), in order, even when several changes
land between two passes; each is recorded in ``announced_status`` after the broker's
acknowledgement. A crash between the
produce and the record repeats the event at the next pass (consumers key on alert id
and status); nothing committed is left unannounced.

One pass at a time across alerters (a PostgreSQL advisory lock): a second alerter, a
standby, waits for the first's pass to end and then finds nothing left to announce,
instead of producing every event twice."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter.deliver import Deliverer
from shared.db.models import Alert, AlertRule
from shared.events import AlertEvent
from shared.metrics import metrics


def to_event(alert: Alert, rule: AlertRule, status: str | None = None) -> AlertEvent:
    """The alert as an event; ``status`` (default: the alert's) is the change it announces."""
    return AlertEvent(
        id=alert.id,
        rule_id=rule.id,
        rule_name=rule.name,
        entity=alert.entity,
        stream=alert.stream,
        severity=alert.severity,
        status=status or alert.status,
        window_start=alert.window_start,
        window_end=alert.window_end,
        fired_at=alert.fired_at,
        explanation=alert.explanation,
    )


OUTBOX_LOCK = 7_420_001  # advisory lock key, unique within the database


async def notify_new(sessions: async_sessionmaker[AsyncSession], deliverer: Deliverer) -> int:
    """Hand every new firing to the webhook deliverer, once: each is claimed (``notified``)
    first, so two alerters never both hand it over. PostgreSQL only: it never waits for
    the broker or the ``alerts`` topic. The number handed over."""
    async with sessions() as s:
        rows = (
            await s.execute(
                select(Alert, AlertRule)
                .join(AlertRule, AlertRule.id == Alert.rule_id)
                .where(Alert.notified.is_(False))
                .order_by(Alert.fired_at)
            )
        ).all()
    handed = 0
    for alert, rule in rows:
        if await _claim_notification(sessions, alert.id):
            metrics().alerts_fired.labels(rule.name, rule.severity).inc()
            deliverer.submit(to_event(alert, rule, "open"), list(rule.channels or []))
            handed += 1
    return handed


async def announce_pending(sessions: async_sessionmaker[AsyncSession], producer: AIOKafkaProducer, topic: str) -> int:
    """Produce every unannounced firing and status change; the number of events produced.
    Waits (at most 10 s, then raises for the caller's retry) while another alerter publishes."""
    async with sessions() as guard, guard.begin():
        await guard.execute(text("SET LOCAL lock_timeout = '10s'"))
        await guard.execute(select(func.pg_advisory_xact_lock(OUTBOX_LOCK)))
        return await _announce(sessions, producer, topic)


async def _announce(sessions: async_sessionmaker[AsyncSession], producer: AIOKafkaProducer, topic: str) -> int:
    async with sessions() as s:
        rows = (
            await s.execute(
                select(Alert, AlertRule)
                .join(AlertRule, AlertRule.id == Alert.rule_id)
                .where(Alert.announced_status.is_distinct_from(Alert.status))
                .order_by(Alert.fired_at)
            )
        ).all()
    produced = 0
    for alert, rule in rows:
        key = f"{rule.id}:{alert.entity}".encode()
        for status in unannounced(alert):
            await producer.send_and_wait(topic, to_event(alert, rule, status).to_bytes(), key=key)
            produced += 1
            await _announced(sessions, alert.id, status, alert.announced_status)
            alert.announced_status = status
    return produced


def unannounced(alert: Alert) -> list[str]:
    """The statuses still to be produced, in order. Every status the alert went through
    is announced, even when several changes land between two passes (acknowledged and
    then resolved while the broker was down): ``acknowledged`` is known from
    ``acknowledged_at``, and the current status comes last."""
    path = ["open"]
    if alert.acknowledged_at is not None and alert.status in ("acknowledged", "resolved"):
        path.append("acknowledged")
    if alert.status == "resolved":
        path.append("resolved")
    if alert.status not in path:  # a status this module does not know: announce it as it is
        path.append(alert.status)
    done = path.index(alert.announced_status) + 1 if alert.announced_status in path else 0
    return path[done:]


async def _claim_notification(sessions: async_sessionmaker[AsyncSession], alert_id: str) -> bool:
    async with sessions.begin() as s:
        claim = update(Alert).where(Alert.id == alert_id, Alert.notified.is_(False)).values(notified=True)
        return (await s.execute(claim.returning(Alert.id))).scalar() is not None


async def _announced(
    sessions: async_sessionmaker[AsyncSession], alert_id: str, status: str, previous: str | None
) -> None:
    """Record ``status`` as announced, if nothing else recorded a step since ``previous``."""
    async with sessions.begin() as s:
        await s.execute(
            update(Alert)
            .where(Alert.id == alert_id, Alert.announced_status.is_not_distinct_from(previous))
            .values(announced_status=status)
        )
