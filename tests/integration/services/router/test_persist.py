"""The router's ledger and counts take a batch of any size in one statement each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from services.router.persist import expire_sent, mark_sent, record_decisions
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
    assert await record_decisions(sessions, routed) == routed
    assert await record_decisions(sessions, routed) == routed  # recorded, not yet sent: not counted again
    await mark_sent(sessions, [r.id for r in routed])
    assert await record_decisions(sessions, routed) == []  # the ledger holds them, sent: none counts twice
    async with sessions() as s:
        q = select(RoutingMinute.bucket, RoutingMinute.count, RoutingMinute.priority).where(
            RoutingMinute.queue == queue
        )
        rows = sorted((await s.execute(q)).tuples().all())
    per_minute = n // 3
    assert rows == [(T0 + timedelta(minutes=m), per_minute, per_minute // 4) for m in range(3)], rows[:5]


async def test_retention_deletes_only_the_ids_of_chats_sent_before_the_cutoff(sessions: Any, unique: str) -> None:
    """The ledger grew for ever (one row per chat); a row not yet sent must stay whatever its
    age, or a redelivery would route the chat afresh, perhaps to a second queue."""

    def chat(name: str) -> RoutedChat:
        return RoutedChat(
            id=f"{unique}-{name}",
            conversation_id="c",
            event_time=T0,
            queue=f"q{unique}",
            intent="card_declined",
            confidence=0.9,
            priority=False,
            reason="intent card_declined 0.90",
            text="my card was declined",
            sentiment="neutral",
        )

    old_sent, old_unsent, recent_sent = chat("old-sent"), chat("old-unsent"), chat("recent-sent")
    await record_decisions(sessions, [old_sent, old_unsent, recent_sent])
    await mark_sent(sessions, [old_sent.id, recent_sent.id])
    async with sessions.begin() as s:
        await s.execute(
            text("UPDATE routed_events SET routed_at = now() - interval '40 days' WHERE id = ANY(:ids)"),
            {"ids": [old_sent.id, old_unsent.id]},
        )
        await s.execute(
            text("UPDATE routed_events SET sent_at = now() - interval '40 days' WHERE id = :id"), {"id": old_sent.id}
        )
    assert await expire_sent(sessions, days=30) >= 1
    async with sessions() as s:
        q = text("SELECT id FROM routed_events WHERE id LIKE :p")
        left = set((await s.execute(q, {"p": f"{unique}-%"})).scalars())
    assert left == {old_unsent.id, recent_sent.id}
