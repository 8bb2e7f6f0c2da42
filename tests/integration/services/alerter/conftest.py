"""Fixtures for the alerter scenarios: a real local webhook receiver, the alerter's
environment and settings, an evaluator; helpers.py holds the plain helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from alert_scenario import LOCAL_RECEIVERS, Hook, posts_served
from integration.services.alerter.helpers import Receiver
from redis.asyncio import Redis
from sqlalchemy import update

from services.alerter.config import AlerterSettings
from services.alerter.evaluate import Evaluator
from shared.db.models import AlertRule


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    h = Hook()

    async def handle(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        h.seen.append((name, await request.read(), dict(request.headers)))
        return web.Response(status=h.statuses.get(name, 200))

    async with posts_served(handle) as base:
        h.base = base
        yield h


@pytest.fixture
def alerter_env() -> Callable[..., dict[str, str]]:
    def make(unique: str, **extra: str) -> dict[str, str]:
        return {
            "TW_ALERTER_WEBHOOK_SECRET": "test-secret",
            "TW_ALERTER_WEBHOOK_BACKOFF_S": "0.2",
            "TW_ALERTER_WEBHOOK_TIMEOUT_S": "2",
            "TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS": LOCAL_RECEIVERS,  # the hook fixture's 127.0.0.1
            "TW_ALERTER_SWEEP_INTERVAL_S": "5",
            **extra,
        }

    return make


@pytest.fixture
async def only_rule(sessions: Any) -> AsyncIterator[Callable[[int], Awaitable[None]]]:
    """For the crash tests: a fail point such as ``after_alert_commit:1`` counts a firing
    of any rule, so every other enabled rule (the seeded defaults, rules other tests left
    behind) is disabled while the test runs, and enabled again after."""
    disabled: list[int] = []

    async def only(rule_id: int) -> None:
        async with sessions.begin() as s:
            ids = await s.execute(
                update(AlertRule)
                .where(AlertRule.id != rule_id, AlertRule.enabled.is_(True))
                .values(enabled=False)
                .returning(AlertRule.id)
            )
            disabled.extend(ids.scalars())

    yield only
    if disabled:
        async with sessions.begin() as s:
            await s.execute(update(AlertRule).where(AlertRule.id.in_(disabled)).values(enabled=True))


@pytest.fixture
async def evaluator(service_settings: Callable[..., Any], sessions: Any) -> AsyncIterator[Evaluator]:
    """The alerter's evaluator on the test stack (real database and Redis), run by the test itself."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    redis = Redis.from_url(settings.redis.url.get_secret_value())
    yield Evaluator(settings, sessions, redis)
    await redis.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    async with posts_served(r.handle) as base:
        r.base = base
        yield r
        r.release.set()  # before the server stops: a slow handler still waiting answers
