"""The router's ledger and counts take a batch of any size in one statement each."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.router.persist import already_routed, count_routed
from shared.db.models import RoutingMinute
from shared.events import RoutedChat

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_more_chats_than_asyncpg_has_parameters_for_are_counted_once(sessions: Any, unique: str) -> None:
    """asyncpg takes at most 32,767 parameters: a VALUES list of 16,384 chats or more (two
    parameters each) raised InterfaceError, classed retryable, after the batch had been sent
    to the queues, so every retry sent it again, for ever."""
    n = 18_000  # over 16,384; six thousand a minute
    queue = f"q{unique}"
    routed = [
        RoutedChat(
            id=f"{unique}-{i}",
            conversation_id=f"c-{i % 50}",
            event_time=T0 + timedelta(seconds=i % 180),  # three minutes
            queue=queue,
            intent="card_declined",
            confidence=0.9,
            priority=i % 4 == 0,
            reason="intent card_declined 0.90",
            text="my card was declined",
            sentiment="neutral",
        )
        for i in range(n)
    ]
    start = time.perf_counter()
    assert await count_routed(sessions, routed) == n
    assert time.perf_counter() - start < 30
    assert await count_routed(sessions, routed) == 0  # the ledger holds them: none counts twice
    assert await already_routed(sessions, [r.id for r in routed] + [f"{unique}-new"]) == {r.id for r in routed}
    async with sessions() as s:
        q = select(RoutingMinute.bucket, RoutingMinute.count, RoutingMinute.priority).where(
            RoutingMinute.queue == queue
        )
        rows = sorted((await s.execute(q)).tuples().all())
    per_minute = n // 3
    assert rows == [(T0 + timedelta(minutes=m), per_minute, per_minute // 4) for m in range(3)], rows[:5]
