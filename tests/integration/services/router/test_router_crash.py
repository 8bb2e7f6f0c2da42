"""kill -9 the router after it put a batch on the queues but before the ledger
commit, and after the ledger commit but before the offset commit: after a restart
every chat is on its queue (at least once: queue consumers dedupe by id) and
counted exactly once."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from news_feed import at_least
from services_proc import log_tail, running, start_service
from sqlalchemy import func, select
from tw_testing import wait_until

from services.router.config import RouterSettings
from services.router.policy import QUEUES
from shared.db.models import RoutedEvent
from shared.events import RoutedChat, Score, ScoredEvent
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics, make_consumer, make_producer

pytestmark = pytest.mark.integration

INTENTS = ("card_lost_stolen", "balance_inquiry", "complaint", "transfer_problem")
NEUTRAL = {"negative": 0.1, "neutral": 0.8, "positive": 0.1}


def chat(unique: str, i: int) -> ScoredEvent:
    intent = INTENTS[i % len(INTENTS)]
    now = datetime.now(UTC)
    return ScoredEvent(
        id=f"r{unique}-{i}",
        stream="chat",
        event_time=now,
        received_time=now,
        text=f"message {i}",
        conversation_id=f"c{unique}-{i % 40}",
        sentiment=Score(label="neutral", confidence=0.8, probs=NEUTRAL, model="m", version="v"),
        intent=Score(label=intent, confidence=0.9, probs={intent: 0.9, "out_of_scope": 0.1}, model="m", version="v"),
    )


@pytest.mark.parametrize("point", ["after_queue_produce", "after_db_commit"])
async def test_kill_9_router_routes_every_chat_and_counts_it_once(
    point: str, service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    settings: RouterSettings = service_settings(RouterSettings)
    n = 1_000
    await ensure_topics(settings.kafka, [settings.topics.text_scored])
    producer = make_producer(settings.kafka, client_id="test")
    await producer.start()
    try:
        for i in range(n):
            e = chat(unique, i)
            await producer.send(settings.topics.text_scored, e.to_bytes(), key=(e.conversation_id or "").encode())
        await producer.flush()
    finally:
        await producer.stop()

    async def counted() -> int:
        async with sessions() as s:
            q = select(func.count()).select_from(RoutedEvent).where(RoutedEvent.id.like(f"r{unique}-%"))
            return int((await s.execute(q)).scalar() or 0)

    env = {"TW_ROUTER_GROUP_ID": f"rt-{unique}", "TW_ROUTER_MAX_BATCH": "50"}
    crashed = start_service("router", settings, tmp_path, "-crash", TW_FAILPOINTS=f"{point}:3", **env)
    assert await asyncio.to_thread(crashed.wait, 120) == -signal.SIGKILL, log_tail(tmp_path, "router-crash")
    assert await counted() < n
    with running("router", settings, tmp_path, **env):
        await wait_until(lambda: at_least(counted, n), timeout=120)
        await asyncio.sleep(1)  # anything extra would show up now
    assert await counted() == n

    consumer = make_consumer(
        settings.kafka, *(settings.topics.queue(q) for q in QUEUES), group_id=f"q-{unique}", client_id="test"
    )
    await consumer.start()
    seen: list[str] = []
    try:
        async with asyncio.timeout(60):
            while len(set(seen)) < n:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    seen += [RoutedChat.model_validate_json(r.value).id for r in records if r.value]
    finally:
        await consumer.stop()
    assert set(seen) == {f"r{unique}-{i}" for i in range(n)}
    assert await dlq_ops.list_entries(settings.kafka, settings.topics.text_scored) == []
