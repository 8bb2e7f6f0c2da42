"""Feeding headlines into a pipeline under test and counting what it counted
(importable: ``from news_feed import counter, produce_news``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from shared.config import ServiceSettings
from shared.db.models import CountedEvent
from shared.kafka.clients import ensure_topics, make_producer


async def produce_news(
    settings: ServiceSettings,
    prefix: str,
    n: int,
    *,
    text: str = "Shares move {i}",
    burst: int = 0,
    pause_s: float = 0.5,
    gate: asyncio.Event | None = None,
    keyed: bool = False,
) -> None:
    """``n`` headlines with ids ``<prefix><i>`` and event time now, all acknowledged by
    the broker on return. ``burst`` > 0 sends that many, then pauses ``pause_s``;
    a ``gate`` that is clear holds the feed (a broker outage) instead of failing it."""
    await ensure_topics(settings.kafka, [settings.topics.news_raw, settings.topics.chat_raw])
    producer = make_producer(settings.kafka, client_id="test")
    await producer.start()
    try:
        for i in range(n):
            if gate is not None:
                await gate.wait()
            value = {"id": f"{prefix}{i}", "text": text.format(i=i), "event_time": datetime.now(UTC).isoformat()}
            key = str(i).encode() if keyed else None
            await producer.send(settings.topics.news_raw, json.dumps(value).encode(), key=key)
            if burst and i % burst == burst - 1:
                await asyncio.sleep(pause_s)
        await producer.flush()
    finally:
        await producer.stop()


def counter(sessions: Any, prefix: str) -> Callable[[], Awaitable[int]]:
    """How many events with ids ``<prefix>...`` the aggregator counted."""

    async def counted() -> int:
        async with sessions() as s:
            q = select(func.count()).select_from(CountedEvent).where(CountedEvent.id.like(f"{prefix}%"))
            return int((await s.execute(q)).scalar() or 0)

    return counted


async def at_least(fn: Callable[[], Awaitable[int]], n: int) -> bool:
    return await fn() >= n
