"""Alert outbox: the ``alerts`` table is the record; the ``alerts`` topic hears every
change at least once, in order per alert.

A fired alert is handed to the webhook deliverer by the evaluation loop itself, right
after the firing is committed: webhooks wait for neither the broker nor the ``alerts``
topic. The hand-over is claimed (``notify_claimed_at``) so two alerters never both
deliver it, and recorded as done (``notified``) once every channel is delivered, refused
for good, or given up (failing transiently for the deliverer's ``give_up_s``, an ERROR); a
channel out of one pass's attempts before that leaves the alert not done, its claim set to
run out after the deliverer's wait, and a later pass (of any alerter) retries it, skipping the
channels already delivered. A claim older than the deliverer's lease (its alerter stopped or was
killed mid-way) is taken over, and channels already delivered or refused for good are skipped. An alerter
renews the claims of the alerts it is still delivering every few seconds (each claim has a
token, and a renewal extends only the claims still holding the tokens it was given: not one
let go for a later retry, nor one another alerter took over) and never takes
them on a second time: another alerter, whose lease comes from its own settings, does
not take them over while it works, and it does not post them twice itself. Every alert
gets its webhooks, once, with its status when they are handed over: ``open``, or
``acknowledged`` when someone acknowledged it first, or ``resolved`` when it was over
by then (it fired and resolved in one catch-up over past minutes, after an alerter
outage or over a backfill, or was resolved by hand at once): never ``open`` for an
alert that is over.

A loop of its own (so a produce stuck on a broker outage delays neither evaluation nor
webhooks) produces the firing as ``open``, and every later status the alert went
through (``acknowledged``, ``resolved``; by the alerter, the API or the CLI), in order,
even when several changes land between two passes; each is recorded in
``announced_status`` after the broker's acknowledgement. A crash between the produce
and the record repeats the event at the next pass (consumers key on alert id and
status); nothing committed is left unannounced.

One pass at a time across alerters (a PostgreSQL advisory lock): a second alerter, a
standby, waits for the first's pass to end and then finds nothing left to announce,
instead of producing every event twice."""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta
from functools import partial

from aiokafka import AIOKafkaProducer
from sqlalchemy import ColumnElement, func, or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter.deliver import Claims, Deliverer
from shared.db.models import Alert, AlertRule
from shared.events import AlertEvent
from shared.metrics import metrics

log = logging.getLogger(__name__)


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
    """Hand every firing whose webhooks are not done to the deliverer: new ones, and
    ones whose claim is older than the deliverer's lease (the alerter that claimed them
    stopped before all its channels were done). Each is claimed first, so two alerters
    never both deliver it; ``notified`` is set once every channel is done. PostgreSQL
    only: it never waits for the broker or the ``alerts`` topic. Each goes with its status
    at the claim (see the module's docstring). The number handed over."""
    lease = timedelta(seconds=deliverer.lease_s)
    mine = deliverer.in_flight
    sent = time.monotonic()
    renewed = await renew_claims(sessions, mine)  # only these still hold their claims
    deliverer.claim_renewed(renewed, sent)
    async with sessions() as s:
        rows = (
            await s.execute(
                select(Alert, AlertRule)
                .join(AlertRule, AlertRule.id == Alert.rule_id)
                .where(Alert.notified.is_(False), _claimable(lease), Alert.id.not_in(mine))
                .order_by(Alert.fired_at)
            )
        ).all()
    handed = 0
    for alert, rule in rows:
        first = alert.notify_claimed_at is None
        token = secrets.token_hex(16)
        status = await _claim_notification(sessions, alert.id, lease, token)
        if status is None:
            continue
        if first:
            metrics().alerts_fired.labels(rule.name, rule.severity).inc()
        else:
            log.warning(
                "resuming the webhooks of alert %s (claimed at %s, not finished: a channel failed, or its alerter "
                "stopped)",
                alert.id,
                alert.notify_claimed_at,
            )
        deliverer.submit(
            to_event(alert, rule, status),
            list(rule.channels or []),
            done=partial(_notified, sessions, alert.id),
            retry=partial(_retry_later, sessions, alert.id, lease, token),
            claim=token,
        )
        handed += 1
    return handed


def _claimable(lease: timedelta) -> ColumnElement[bool]:
    return or_(Alert.notify_claimed_at.is_(None), Alert.notify_claimed_at < func.now() - lease)


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


async def renew_claims(sessions: async_sessionmaker[AsyncSession], alert_ids: frozenset[str]) -> frozenset[str]:
    """Claim again, now, the alerts this alerter is delivering: a claim ages only once
    its alerter stopped. Given their claims' tokens (:class:`Claims`, as
    :attr:`Deliverer.in_flight` gives them), only the claims still holding those tokens are
    extended: the renew loop reads the alerts in flight, then sends this; a delivery that
    scheduled its retry meanwhile (:func:`_retry_later`, which clears the token) would
    otherwise have that retry pushed back by a whole lease, and one another alerter took
    over (a new token) would be extended for it. An alert without a token (submitted
    without a claim, or given as a bare id) is renewed by its id alone, as before 0015.
    The ids whose claims were extended: only those count as renewed
    (:meth:`Deliverer.claim_renewed`), so an alerter whose claim was taken over lets its
    lapse guard leave the attempts not yet made to the new owner. While alerters older
    than 0015 still run (a rolling upgrade), one of them taking a claim over leaves the
    earlier token in place, and the token protects nothing until they are all upgraded."""
    if not alert_ids:
        return frozenset()
    tokens = alert_ids.tokens if isinstance(alert_ids, Claims) else {}
    held = sorted((alert_id, token) for alert_id, token in tokens.items() if token is not None)
    bare = sorted(alert_ids - {alert_id for alert_id, _ in held})
    same = [tuple_(Alert.id, Alert.notify_claim).in_(held)] if held else []
    async with sessions.begin() as s:
        renewed = await s.execute(
            update(Alert)
            .where(or_(*same, Alert.id.in_(bare)), Alert.notified.is_(False))
            .values(notify_claimed_at=func.now())
            .returning(Alert.id)
        )
        return frozenset(renewed.scalars())


async def _claim_notification(
    sessions: async_sessionmaker[AsyncSession], alert_id: str, lease: timedelta, token: str
) -> str | None:
    """Claim the alert's webhooks under ``token`` (new for each claim: see
    :func:`renew_claims`); its status as committed at the claim, or None when it is not
    to be claimed (done, or claimed by another alerter within the lease)."""
    async with sessions.begin() as s:
        claim = (
            update(Alert)
            .where(Alert.id == alert_id, Alert.notified.is_(False), _claimable(lease))
            .values(notify_claimed_at=func.now(), notify_claim=token)
        )
        status: str | None = (await s.execute(claim.returning(Alert.status))).scalar()
        return status


async def _notified(sessions: async_sessionmaker[AsyncSession], alert_id: str) -> None:
    """Every channel is done: the firing's webhooks are not taken on again."""
    try:
        async with sessions.begin() as s:
            await s.execute(update(Alert).where(Alert.id == alert_id).values(notified=True))
    except Exception as exc:  # noqa: BLE001 - the claim's lease runs out and delivered channels are skipped
        log.warning("could not record alert %s as notified (%s); its webhooks are checked again later", alert_id, exc)


async def _retry_later(
    sessions: async_sessionmaker[AsyncSession], alert_id: str, lease: timedelta, token: str, delay_s: float
) -> None:
    """A channel is to be tried again in ``delay_s``: the claim (``token``'s, if it is still
    in force) is set to run out then (for this alerter's lease; another alerter's may end
    it a little sooner or later), so the next pass of any alerter after that takes the
    alert up again. Its token is cleared: the claim is let go, and a renewal sent before
    this (the renew loop read the alert in flight) no longer extends it."""
    try:
        async with sessions.begin() as s:
            await s.execute(
                update(Alert)
                .where(Alert.id == alert_id, Alert.notified.is_(False), Alert.notify_claim == token)
                .values(notify_claimed_at=func.now() - lease + timedelta(seconds=delay_s), notify_claim=None)
            )
    except Exception as exc:  # noqa: BLE001 - the claim's lease runs out instead
        log.warning("could not schedule alert %s's webhooks again (%s); retried once its claim runs out", alert_id, exc)


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
