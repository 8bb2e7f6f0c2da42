"""PostgreSQL stopped for 30 seconds mid-stream and restarted: the aggregator
pauses and retries, memory stays bounded, nothing is dead-lettered, nothing is
lost or counted twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from news_feed import at_least, counter, produce_news
from services_proc import log_tail, running
from tw_testing import wait_until

from services.classifier.config import ClassifierSettings
from shared.kafka import dlq_ops
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
    n = 1_500
    counted = counter(sessions, f"o{unique}-")
    stack = StackSettings()
    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    with (
        running("classifier", settings, tmp_path, **env),
        running("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}") as agg,
    ):
        feeder = asyncio.create_task(produce_news(settings, f"o{unique}-", n, text="Profit warning {i}", burst=50))
        await wait_until(lambda: at_least(counted, 100), timeout=90)
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
        await wait_until(lambda: at_least(counted, n), timeout=120)
        await asyncio.sleep(1)
        assert await counted() == n
    assert rss_during - rss_before < 100, (rss_before, rss_during)
    assert "retrying" in log_tail(tmp_path, "aggregator", 200_000)
    assert await dlq_ops.list_entries(settings.kafka, settings.topics.text_scored) == []
