"""Alert outbox: the ``alerts`` table is the record; the ``alerts`` topic hears every
change at least once, in order per alert.

A fired alert is produced as ``open`` (the firing) and handed to the webhook
deliverer, then marked published. Any later status change (``acknowledged`` or
``resolved``, by the alerter, the API or the CLI) is produced while
``announced_status`` differs from ``status``, then recorded as announced. A crash
between the produce and the mark repeats the event at the next pass (consumers key on
alert id and status); nothing committed is left unannounced.

One pass at a time across alerters (a PostgreSQL advisory lock): a second alerter, a
standby, waits for the first's pass to end and then finds nothing left to announce,
instead of producing every event twice."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from sqlalchemy import func, or_, select, text, update
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


OUTBOX_LOCK = 7_420_001  # advisory lock key, unique within the database


async def publish_pending(
    sessions: async_sessionmaker[AsyncSession], producer: AIOKafkaProducer, topic: str, deliverer: Deliverer
) -> int:
    """Produce every unannounced firing and status change; the number of events produced.
    Waits (at most 10 s, then raises for the caller's retry) while another alerter publishes."""
    async with sessions() as guard, guard.begin():
        await guard.execute(text("SET LOCAL lock_timeout = '10s'"))
        await guard.execute(select(func.pg_advisory_xact_lock(OUTBOX_LOCK)))
        return await _publish(sessions, producer, topic, deliverer)


async def _publish(
    sessions: async_sessionmaker[AsyncSession], producer: AIOKafkaProducer, topic: str, deliverer: Deliverer
) -> int:
    async with sessions() as s:
        rows = (
            await s.execute(
                select(Alert, AlertRule)
                .join(AlertRule, AlertRule.id == Alert.rule_id)
                .where(or_(Alert.published.is_(False), Alert.announced_status.is_distinct_from(Alert.status)))
                .order_by(Alert.fired_at)
            )
        ).all()
    produced = 0
    for alert, rule in rows:
        key = f"{rule.id}:{alert.entity}".encode()
        if not alert.published:
            event = to_event(alert, rule).model_copy(update={"status": "open"})  # the firing itself
            await producer.send_and_wait(topic, event.to_bytes(), key=key)
            produced += 1
            async with sessions.begin() as s:
                claimed = (
                    await s.execute(
                        update(Alert)
                        .where(Alert.id == alert.id, Alert.published.is_(False))
                        .values(published=True, announced_status="open")
                        .returning(Alert.id)
                    )
                ).scalar()
            if claimed:
                metrics().alerts_fired.labels(rule.name, rule.severity).inc()
                deliverer.submit(event, list(rule.channels or []))
            alert.announced_status = "open"
        if alert.status != alert.announced_status:
            await producer.send_and_wait(topic, to_event(alert, rule).to_bytes(), key=key)
            produced += 1
            async with sessions.begin() as s:
                # only the status just produced: a newer change is announced on the next pass
                await s.execute(
                    update(Alert)
                    .where(Alert.id == alert.id, Alert.status == alert.status)
                    .values(announced_status=alert.status)
                )
    return produced
