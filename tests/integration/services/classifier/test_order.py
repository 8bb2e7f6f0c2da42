"""Batches are classified concurrently, yet scored events leave in the order the
raw events arrived: a conversation's messages stay in order for the router."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from services_proc import log_tail, running

from services.classifier.config import ClassifierSettings
from shared.kafka.clients import ensure_topics, make_producer

pytestmark = pytest.mark.integration


async def test_concurrent_batches_keep_each_conversation_in_order(
    service_settings: Callable[..., Any], tiny_models: Path, tmp_path: Path, unique: str
) -> None:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    conversations, per_conversation = 4, 300
    now = datetime.now(UTC).isoformat()
    producer = make_producer(settings.kafka, client_id="test")
    await producer.start()
    try:
        futures = []
        for i in range(per_conversation):
            for c in range(conversations):
                # uneven lengths make batches take different times, so a reordering would show
                text = f"my card {i} " + "was declined again " * ((i * 7 + c) % 13)
                event = {"id": f"o{unique}-{c}-{i}", "conversation_id": f"conv-{c}", "text": text, "event_time": now}
                value, key = json.dumps(event).encode(), f"conv-{c}".encode()
                futures.append(await producer.send(topics.chat_raw, value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()

    env = {
        "TW_MODELS_DIR": str(tiny_models),
        "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}",
        "TW_CLASSIFIER_BATCH_MAX": "40",
        "TW_CLASSIFIER_CONCURRENT_BATCHES": "3",
    }
    seen: dict[str, list[int]] = {f"conv-{c}": [] for c in range(conversations)}
    consumer = AIOKafkaConsumer(
        topics.text_scored,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=f"order-{unique}",
        auto_offset_reset="earliest",
    )
    with running("classifier", settings, tmp_path, **env):
        await consumer.start()
        try:
            async with asyncio.timeout(120):
                while sum(len(v) for v in seen.values()) < conversations * per_conversation:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        for r in records:
                            scored = json.loads(r.value)
                            seen[scored["conversation_id"]].append(int(scored["id"].rsplit("-", 1)[1]))
        except TimeoutError:
            raise AssertionError(log_tail(tmp_path, "classifier")) from None
        finally:
            await consumer.stop()
    for conversation, order in seen.items():
        assert order == list(range(per_conversation)), conversation
