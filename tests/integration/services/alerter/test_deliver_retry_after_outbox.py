"""Through the outbox (:func:`notify_new`) with a real local receiver and the real
database: a 429's ``Retry-After`` longer than the pass has left ends the pass after one
request and schedules the claim no sooner than asked; a rule stored listing one webhook
in several spellings posts each alert to it once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from alert_scenario import posts_served
from integration.services.alerter.test_deliver_retry_later import deliverer, fired, row, settle
from sqlalchemy import func, select, update

from services.alerter.publish import notify_new
from shared.db.models import Alert, AlertRule

pytestmark = pytest.mark.integration


class RateLimited:
    """``/limited`` answers 429 with ``Retry-After: 30``, anything else 200; counts posts per name."""

    def __init__(self) -> None:
        self.posts: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        await request.read()
        self.posts.append(name)
        if name == "limited":
            return web.Response(status=429, headers={"Retry-After": "30"})
        return web.Response(status=200)


async def claim_due_in(sessions: Any, aid: str, lease_s: float) -> float:
    """Seconds until the alert's claim runs out (a later pass may take it)."""
    async with sessions() as s:
        claimed = (await s.execute(select(Alert.notify_claimed_at).where(Alert.id == aid))).scalar_one()
        now = (await s.execute(select(func.now()))).scalar_one()
    return float((claimed - now).total_seconds() + lease_s)


async def test_a_rate_limited_receiver_gets_one_request_and_its_wait(sessions: Any) -> None:
    """It got all 5 attempts within 0.75 s, and the next pass came under a second later."""
    receiver = RateLimited()
    async with posts_served(receiver.handle) as base:
        aid = await fired(sessions, [{"type": "webhook", "url": f"{base}/limited", "format": "slack"}])
        d = deliverer(sessions, max_attempts=5, backoff_s=0.05, give_up_s=3600.0)
        try:
            assert await notify_new(sessions, d) == 1
            await settle(d)
            assert receiver.posts == ["limited"]
            assert not (await row(sessions, aid)).notified
            assert 28.0 <= await claim_due_in(sessions, aid, d.lease_s) <= 31.0
            await asyncio.sleep(1.0)
            assert await notify_new(sessions, d) == 0  # not before the receiver's 30 s
            assert receiver.posts == ["limited"]
        finally:
            await d.drain()
            async with sessions.begin() as s:  # done: no later test's pass (a shorter lease) takes it up
                await s.execute(update(Alert).where(Alert.id == aid).values(notified=True))


async def test_a_rule_stored_with_one_webhook_in_three_spellings_posts_once(sessions: Any) -> None:
    """``u``, ``u#x`` and ``u?`` (stored before a fragment and the repeat were refused)
    got three posts of each alert, with three Idempotency-Keys."""
    receiver = RateLimited()
    async with posts_served(receiver.handle) as base:
        url = f"{base}/hook"
        aid = await fired(sessions, [{"type": "webhook", "url": url, "format": "slack"}])
        async with sessions.begin() as s:
            rule_id = (await s.execute(select(Alert.rule_id).where(Alert.id == aid))).scalar_one()
            spellings = [{"type": "webhook", "url": u, "format": "slack"} for u in (url, url + "#x", url + "?")]
            await s.execute(update(AlertRule).where(AlertRule.id == rule_id).values(channels=spellings))
        d = deliverer(sessions)
        assert await notify_new(sessions, d) == 1
        await settle(d)
        await d.drain()
        assert receiver.posts == ["hook"]
        assert (await row(sessions, aid)).notified
