"""PostgreSQL stopped for 30 seconds mid-stream and restarted: the aggregator
pauses and retries, memory stays bounded, nothing is dead-lettered, nothing is
lost or counted twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from services_proc import log_tail, running
from sqlalchemy import func, select
from tw_testing import wait_until

from services.classifier.config import ClassifierSettings
from shared.db.models import CountedEvent
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics, make_producer
from shared.stack import manager
from shared.stack.settings import StackSettings

pytestmark = pytest.mark.integration


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def test_postgres_down_30s(
    service_settings: Callable[..., Any], tiny_models: Path, sessions: Any, tmp_path: Path, unique: str
) -> None:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    await ensure_topics(settings.kafka, [settings.topics.news_raw, settings.topics.chat_raw])
    n = 1_500

    async def counted() -> int:
        async with sessions() as s:
            q = select(func.count()).select_from(CountedEvent).where(CountedEvent.id.like(f"o{unique}-%"))
            return int((await s.execute(q)).scalar() or 0)

    async def produce_slowly() -> None:
        producer = make_producer(settings.kafka, client_id="test")
        await producer.start()
        try:
            for i in range(n):
                now = datetime.now(UTC).isoformat()
                await producer.send(
                    settings.topics.news_raw,
                    json.dumps({"id": f"o{unique}-{i}", "text": f"Profit warning {i}", "event_time": now}).encode(),
                )
                if i % 50 == 49:
                    await asyncio.sleep(0.5)
            await producer.flush()
        finally:
            await producer.stop()

    stack = StackSettings()
    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    with (
        running("classifier", settings, tmp_path, **env),
        running("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}") as agg,
    ):
        feeder = asyncio.create_task(produce_slowly())
        await wait_until(lambda: _ge(counted, 100), timeout=90)
        await asyncio.to_thread(manager.down, stack, only=["postgres"])
        try:
            rss_before = rss_mb(agg.pid)
            await asyncio.sleep(30)  # the outage itself, not a synchronisation
            assert agg.poll() is None, log_tail(tmp_path, "aggregator")
            rss_during = rss_mb(agg.pid)
        finally:
            await asyncio.to_thread(manager.up, stack, only=["postgres"])
        await feeder
        await sessions.kw["bind"].dispose()  # drop connections that died with the server
        await wait_until(lambda: _ge(counted, n), timeout=120)
        await asyncio.sleep(1)
        assert await counted() == n
    assert rss_during - rss_before < 100, (rss_before, rss_during)
    assert "retrying" in log_tail(tmp_path, "aggregator", 200_000)
    assert await dlq_ops.list_entries(settings.kafka, settings.topics.text_scored) == []


async def _ge(fn: Callable[[], Any], n: int) -> bool:
    return bool(await fn() >= n)
