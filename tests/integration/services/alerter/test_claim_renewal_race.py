"""A renewal of the webhook claims (the alerter's renew loop, :func:`renew_claims`) that
lands just after a delivery scheduled its retry (retry-later) must not push that retry
back by a full lease: the renewal extends only the claim the deliverer still holds. The
two statements are driven in that order explicitly: the renewal is sent with the set of
alerts in flight as the renew loop read it before the delivery let its claim go."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from alert_scenario import LOCAL_POLICY, add_rule
from integration.services.alerter.helpers import AT, Receiver
from sqlalchemy import func, select, update

from services.alerter.deliver import Deliverer
from services.alerter.publish import notify_new, renew_claims
from shared.db.models import Alert

pytestmark = pytest.mark.integration


def deliverer(sessions: Any, **kw: Any) -> Deliverer:
    opts: dict[str, Any] = {"timeout_s": 5.0, "max_attempts": 1, "backoff_s": 0.01, "give_up_s": 3600.0} | kw
    return Deliverer(sessions, b"k" * 16, policy=LOCAL_POLICY, **opts)


async def fired(sessions: Any, url: str) -> str:
    rid = await add_rule(
        sessions, f"race-{uuid.uuid4().hex[:8]}", "ACME", channels=[{"type": "webhook", "url": url, "format": "json"}]
    )
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


async def claim_age_s(sessions: Any, aid: str) -> float:
    """Seconds since the alert's claim (negative: set to run out later), database clock."""
    async with sessions() as s:
        q = select(func.extract("epoch", func.now() - Alert.notify_claimed_at)).where(Alert.id == aid)
        return float((await s.execute(q)).scalar_one())


async def test_a_renewal_landing_after_retry_later_does_not_push_the_retry_back(
    sessions: Any, receiver: Receiver
) -> None:
    receiver.statuses["busy"] = 503
    aid = await fired(sessions, receiver.url("busy"))
    d = deliverer(sessions)
    assert await notify_new(sessions, d) >= 1
    in_flight = d.in_flight  # what the renew loop reads before it sends its UPDATE
    assert aid in in_flight
    await settle(d)  # the attempt failed: retry-later's UPDATE set the claim to run out in ~0.01 s
    assert aid not in d.in_flight
    scheduled = await claim_age_s(sessions, aid)
    assert scheduled > d.lease_s - 5
    assert aid not in await renew_claims(sessions, in_flight)  # the renewal's UPDATE lands after retry-later's
    assert await claim_age_s(sessions, aid) >= scheduled  # before: ~0, the retry a whole lease (82.5 s) late

    receiver.statuses["busy"] = 200
    assert aid in await handed_over(sessions, deliverer(sessions))  # the next pass retries it at once
    async with sessions() as s:
        assert (await s.execute(select(Alert.notified).where(Alert.id == aid))).scalar_one()


async def handed_over(sessions: Any, d: Deliverer) -> set[str]:
    """The alerts one pass of ``d`` hands over (and delivers)."""
    await notify_new(sessions, d)
    taken = set(d.in_flight)
    await settle(d)
    await d.drain(timeout_s=0.1)
    return taken


async def test_a_renewal_extends_the_claim_it_holds_not_one_another_alerter_took_over(
    sessions: Any, receiver: Receiver
) -> None:
    """Alerter A's claim ran out (it could not reach the database); B took the alert over.
    A's late renewal must leave B's claim as B made it. A's own claim, while it holds it,
    is renewed (the claim ages only once its alerter stopped)."""
    aid = await fired(sessions, receiver.url("slow-race"))
    a = deliverer(sessions, timeout_s=30.0)
    assert await notify_new(sessions, a) >= 1
    while not receiver.sent("slow-race"):
        await asyncio.sleep(0.02)
    held = a.in_flight
    async with sessions.begin() as s:  # A's claim, aged past its lease
        aged = func.now() - timedelta(seconds=a.lease_s + 1)
        await s.execute(update(Alert).where(Alert.id == aid).values(notify_claimed_at=aged))
    assert aid in await renew_claims(sessions, held)  # A holds it: renewed
    assert await claim_age_s(sessions, aid) < 5
    async with sessions.begin() as s:
        await s.execute(update(Alert).where(Alert.id == aid).values(notify_claimed_at=aged))
    b = deliverer(sessions, timeout_s=30.0)
    assert await notify_new(sessions, b) >= 1 and aid in b.in_flight  # B takes it over
    async with sessions.begin() as s:  # B's claim made a minute ago, say
        await s.execute(
            update(Alert).where(Alert.id == aid).values(notify_claimed_at=func.now() - timedelta(seconds=60))
        )
    # A's late renewal extends nothing, and says so: A does not count its claim renewed,
    # so its lapse guard leaves the attempts not yet made to B (Deliverer.claim_renewed)
    assert aid not in await renew_claims(sessions, held)
    assert await claim_age_s(sessions, aid) > 55
    receiver.release.set()
    await settle(a)
    await settle(b)
    await a.drain(timeout_s=0.1)
    await b.drain(timeout_s=0.1)
