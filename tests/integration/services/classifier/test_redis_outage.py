"""Redis stopped mid-stream: the pipeline (classifier, aggregator, router) does not need
it to classify, count or route, so nothing stops, nothing is dead-lettered, nothing is
lost; the classifier's best-effort status for the dashboard comes back with Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from services_proc import log_tail, running
from sqlalchemy import func, select
from tw_testing import wait_until

from services.classifier.config import ClassifierSettings, status_key
from shared.db.models import CountedEvent
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics, make_producer
from shared.stack import manager
from shared.stack.settings import StackSettings

pytestmark = pytest.mark.integration


async def test_redis_down_pipeline_keeps_classifying_counting_and_routing(
    service_settings: Callable[..., Any], tiny_models: Path, sessions: Any, tmp_path: Path, unique: str
) -> None:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    news, chats = 300, 100

    async def counted() -> int:
        async with sessions() as s:
            q = select(func.count()).select_from(CountedEvent).where(CountedEvent.id.like(f"r{unique}-%"))
            return int((await s.execute(q)).scalar() or 0)

    async def redis(command: str) -> int:  # a fresh connection each time: Redis restarts in between
        client = Redis.from_url(settings.redis.url.get_secret_value())
        try:
            return int(await getattr(client, command)(status_key(topics.prefix)))
        finally:
            await client.aclose()

    async def has_status() -> bool:
        return await redis("exists") == 1

    stack = StackSettings()
    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    with (
        running("classifier", settings, tmp_path, **env) as cls,
        running("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}") as agg,
        running("router", settings, tmp_path, TW_ROUTER_GROUP_ID=f"rt-{unique}") as rt,
    ):
        await redis("delete")
        await wait_until(has_status, timeout=60)  # the classifier does use Redis while it is up
        await asyncio.to_thread(manager.down, stack, only=["redis"])
        try:
            producer = make_producer(settings.kafka, client_id="test")
            await producer.start()
            try:
                now = datetime.now(UTC).isoformat()
                for i in range(news):
                    body = {"id": f"r{unique}-n{i}", "text": f"Profit warning {i}", "event_time": now}
                    await producer.send(topics.news_raw, json.dumps(body).encode())
                for i in range(chats):
                    body = {
                        "id": f"r{unique}-c{i}",
                        "conversation_id": f"conv-{i % 7}",
                        "text": "card lost",
                        "event_time": now,
                    }
                    await producer.send(topics.chat_raw, json.dumps(body).encode())
                await producer.flush()
            finally:
                await producer.stop()
            await wait_until(lambda: _ge(counted, news + chats), timeout=120)
            await asyncio.sleep(16)  # past one more status attempt of the classifier against the dead Redis
            for proc, name in ((cls, "classifier"), (agg, "aggregator"), (rt, "router")):
                assert proc.poll() is None, log_tail(tmp_path, name)
        finally:
            await asyncio.to_thread(manager.up, stack, only=["redis"])
        await redis("delete")
        await wait_until(has_status, timeout=30)  # and picks it up again once Redis is back
    assert await counted() == news + chats
    for topic in (topics.news_raw, topics.chat_raw, topics.text_scored):
        assert await dlq_ops.list_entries(settings.kafka, topic) == []


async def _ge(fn: Callable[[], Any], n: int) -> bool:
    return bool(await fn() >= n)
