"""Alert outbox: alerts committed in PostgreSQL are produced to the ``alerts``
topic (as ``open``: the firing) and handed to the webhook deliverer, then marked
published. Unpublished alerts left by a crash are published at the next start.
Status changes (resolved, acknowledged) follow as their own events."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter.deliver import Deliverer
from shared.db.models import Alert, AlertRule
from shared.events import AlertEvent
from shared.metrics import metrics


def to_event(alert: Alert, rule: AlertRule) -> AlertEvent:
    return AlertEvent(
        id=alert.id,
        rule_id=rule.id,
        rule_name=rule.name,
        entity=alert.entity,
        stream=alert.stream,
        severity=alert.severity,
        status=alert.status,
        window_start=alert.window_start,
        window_end=alert.window_end,
        fired_at=alert.fired_at,
        explanation=alert.explanation,
    )


async def publish_pending(
    sessions: async_sessionmaker[AsyncSession], producer: AIOKafkaProducer, topic: str, deliverer: Deliverer
) -> int:
    async with sessions() as s:
        rows = (
            await s.execute(
                select(Alert, AlertRule)
                .join(AlertRule, AlertRule.id == Alert.rule_id)
                .where(Alert.published.is_(False))
                .order_by(Alert.fired_at)
            )
        ).all()
    for alert, rule in rows:
        event = to_event(alert, rule).model_copy(update={"status": "open"})  # the firing itself
        await producer.send_and_wait(topic, event.to_bytes(), key=f"{rule.id}:{alert.entity}".encode())
        async with sessions.begin() as s:
            claimed = (
                await s.execute(
                    update(Alert)
                    .where(Alert.id == alert.id, Alert.published.is_(False))
                    .values(published=True)
                    .returning(Alert.id)
                )
            ).scalar()
        if claimed:
            metrics().alerts_fired.labels(rule.name, rule.severity).inc()
            deliverer.submit(event, list(rule.channels or []))
    return len(rows)


async def publish_status(
    sessions: async_sessionmaker[AsyncSession], producer: AIOKafkaProducer, topic: str, alert_id: str
) -> None:
    """Announce a status change (e.g. resolved) on the alerts topic."""
    async with sessions() as s:
        row = (
            await s.execute(
                select(Alert, AlertRule).join(AlertRule, AlertRule.id == Alert.rule_id).where(Alert.id == alert_id)
            )
        ).first()
    if row is not None:
        event = to_event(row[0], row[1])
        await producer.send_and_wait(topic, event.to_bytes(), key=f"{row[1].id}:{row[0].entity}".encode())
