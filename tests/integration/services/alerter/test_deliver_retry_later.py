"""Webhooks through the outbox (:func:`notify_new`) with real local receivers and the real
database: one Idempotency-Key per alert and channel whatever the status a takeover finds,
and a receiver down for longer than one pass's attempts still gets the alert, later."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest
from alert_scenario import LOCAL_POLICY, add_rule
from integration.services.alerter.helpers import AT, Receiver, alert
from sqlalchemy import func, select, update

from services.alerter.deliver import Deliverer
from services.alerter.publish import notify_new
from shared.db.models import Alert, WebhookDelivery
from shared.metrics import metrics

pytestmark = pytest.mark.integration


def deliverer(sessions: Any, **kw: Any) -> Deliverer:
    opts: dict[str, Any] = {"timeout_s": 5.0, "max_attempts": 2, "backoff_s": 0.01} | kw
    return Deliverer(sessions, b"k" * 16, policy=LOCAL_POLICY, **opts)


async def fired(sessions: Any, channels: list[dict[str, str]]) -> str:
    rid = await add_rule(sessions, f"retry-{uuid.uuid4().hex[:8]}", "ACME", channels=channels)
    aid = "al-" + uuid.uuid4().hex[:12]
    async with sessions.begin() as s:
        s.add(
            Alert(
                id=aid, rule_id=rid, entity="ACME", stream="news", episode=AT, status="open", severity="critical",
                window_start=AT, window_end=AT, fired_at=AT, explanation={"share": 0.6}, model_version="v1",
                announced_status="open",
            )
        )  # fmt: skip
    return aid


async def settle(d: Deliverer) -> None:
    while d._tasks:
        await asyncio.gather(*list(d._tasks))


async def row(sessions: Any, aid: str) -> Alert:
    async with sessions() as s:
        return (await s.execute(select(Alert).where(Alert.id == aid))).scalar_one()


async def test_a_takeover_that_finds_the_alert_resolved_sends_the_same_key(sessions: Any, receiver: Receiver) -> None:
    """Alerter A posts ``open`` and stops before recording it; the alert is resolved; B takes
    the claim over and posts ``resolved``: with the key A sent, so the receiver drops it."""
    aid = await fired(sessions, [{"type": "webhook", "url": receiver.url("slow"), "format": "json"}])
    a = deliverer(sessions, timeout_s=10.0)
    await notify_new(sessions, a)
    while not receiver.sent("slow"):
        await asyncio.sleep(0.02)
    await a.drain(timeout_s=0.1)  # stopped: the post reached the receiver, nothing recorded
    async with sessions.begin() as s:
        await s.execute(
            update(Alert)
            .where(Alert.id == aid)
            .values(status="resolved", notify_claimed_at=func.now() - timedelta(seconds=a.lease_s + 1))
        )
    receiver.release.set()
    b = deliverer(sessions)
    assert await notify_new(sessions, b) == 1
    await settle(b)
    await b.drain()
    (first, key_a), (second, key_b) = receiver.sent("slow")
    assert (first["status"], second["status"]) == ("open", "resolved")
    assert key_a == key_b
    assert (await row(sessions, aid)).notified


async def test_a_receiver_down_longer_than_a_pass_gets_the_alert_from_a_later_pass(
    sessions: Any, receiver: Receiver
) -> None:
    """Out of attempts on 503s: the alert is not marked notified (before, it was, and lost);
    a later pass retries the failing channel only (not the delivered one, nor the refused one)."""
    receiver.statuses |= {"busy": 503, "gone": 410}
    names = ("busy", "fine", "gone")
    aid = await fired(sessions, [{"type": "webhook", "url": receiver.url(n), "format": "json"} for n in names])
    d = deliverer(sessions, give_up_s=3600.0)
    assert await notify_new(sessions, d) == 1
    await settle(d)
    assert not (await row(sessions, aid)).notified
    assert [len(receiver.sent(n)) for n in names] == [2, 1, 1]
    receiver.statuses["busy"] = 200
    for _ in range(200):  # the wait is about as long as it has been failing (well under a second here)
        await notify_new(sessions, d)
        await settle(d)
        if (await row(sessions, aid)).notified:
            break
        await asyncio.sleep(0.05)
    assert (await row(sessions, aid)).notified
    assert len(receiver.sent("busy")) >= 3 and receiver.sent("busy")[-1][0]["id"] == aid
    assert [len(receiver.sent(n)) for n in ("fine", "gone")] == [1, 1]
    async with sessions() as s:
        busy = WebhookDelivery.url.contains("busy")
        q = select(WebhookDelivery.delivered).where(WebhookDelivery.alert_id == aid, busy).order_by(WebhookDelivery.id)
        assert (await s.execute(q)).scalars().all()[-1] is True
    await d.drain()


async def test_a_channel_failing_past_the_give_up_age_is_given_up_with_an_error(
    sessions: Any, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses["busy"] = 503
    aid = await fired(sessions, [{"type": "webhook", "url": receiver.url("busy"), "format": "json"}])
    before = metrics().webhook_give_ups.labels("json")._value.get()
    d = deliverer(sessions, give_up_s=0.0)
    with caplog.at_level(logging.ERROR, logger="services.alerter.deliver"):
        await notify_new(sessions, d)
        await settle(d)
    assert (await row(sessions, aid)).notified
    assert metrics().webhook_give_ups.labels("json")._value.get() == before + 1
    (msg,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and aid in r.getMessage()]
    assert "giving up" in msg and "s3cr3t" not in msg and "/busy" not in msg
    assert len(receiver.sent("busy")) == 2
    await d.drain()


async def test_a_channel_given_up_is_not_posted_again_while_another_is_retried(
    sessions: Any, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Two failing channels whose first attempts are a second apart (one answers 503 at
    once, one times out): the first is given up while the second is still retried. Before,
    nothing recorded the give-up, so each later pass posted the first channel again and
    gave it up again (3 posts, 3 ERRORs, 3 counts for 2 channels)."""
    receiver.statuses |= {"busy": 503, "slow": 503}  # slow: answers only after the timeout
    channels = [{"type": "webhook", "url": receiver.url(n), "format": "json"} for n in ("busy", "slow")]
    aid = await fired(sessions, channels)
    d = deliverer(sessions, timeout_s=1.0, max_attempts=1, give_up_s=2.5)
    with caplog.at_level(logging.ERROR, logger="services.alerter.deliver"):
        for _ in range(400):
            await notify_new(sessions, d)
            await settle(d)
            if (await row(sessions, aid)).notified:
                break
            await asyncio.sleep(0.05)
    await d.drain(timeout_s=0.1)
    assert (await row(sessions, aid)).notified
    gave_up = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and aid in r.getMessage()]
    assert len(gave_up) == 2, gave_up  # once per channel
    # (not the give-ups counter: notify_new also hands over alerts other tests left unnotified)
    async with sessions() as s:
        busy = WebhookDelivery.url.contains("busy")
        q = select(WebhookDelivery.attempt).where(WebhookDelivery.alert_id == aid, busy).order_by(WebhookDelivery.id)
        attempts = list((await s.execute(q)).scalars())
    assert attempts.count(0) == 1 and attempts[-1] == 0  # given up once, and nothing posted after it


async def test_a_delivery_whose_claim_lapsed_while_it_waited_is_left_to_the_alerter_that_took_it(
    sessions: Any, receiver: Receiver
) -> None:
    """Alerter A's delivery waits for its receiver's slot (10 requests to that URL hang);
    A cannot renew its claim (the database unreachable from A) for longer than its lease,
    so B takes the alert over and delivers it. When A's slot frees, A must not post it
    too (before, it did: the slot wait is outside the lease)."""
    a, b = deliverer(sessions, timeout_s=30.0, max_attempts=1), deliverer(sessions, timeout_s=30.0, max_attempts=1)
    aid = await fired(sessions, [{"type": "webhook", "url": receiver.url("slow-x"), "format": "json"}])
    held = [asyncio.create_task(a._deliver(alert(), receiver.url("slow-x"), "json")) for _ in range(10)]
    while len(receiver.sent("slow-x")) < 10:
        await asyncio.sleep(0.02)
    assert await notify_new(sessions, a) == 1  # A claims it; it waits for a slot
    await asyncio.sleep(0.3)
    assert aid in a.in_flight
    a._renewed[aid] -= a.lease_s + 1  # A's renewals failed for a lease: its claim ran out
    async with sessions.begin() as s:
        await s.execute(
            update(Alert).where(Alert.id == aid).values(notify_claimed_at=func.now() - timedelta(seconds=a.lease_s + 1))
        )
    assert await notify_new(sessions, b) == 1  # B takes it over (its own slots: another process)
    receiver.release.set()  # the hanging requests answer: A's slot frees, B's request is answered
    await settle(b)
    await asyncio.gather(*held)
    await settle(a)
    await a.drain(timeout_s=0.1)
    await b.drain(timeout_s=0.1)
    posts = [body["id"] for body, _ in receiver.sent("slow-x")].count(aid)
    assert posts == 1, f"{posts} posts of {aid}"
    assert (await row(sessions, aid)).notified
