"""Two classifiers in one consumer group share the raw partitions; when one is
killed (-9) mid-stream the other takes its partitions over: every event counted
once, nothing dead-lettered."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from news_feed import at_least, counter, produce_news
from services_proc import log_tail, running, start_service, stop
from tw_testing import wait_until

from services.classifier.config import ClassifierSettings
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics

pytestmark = pytest.mark.integration


async def test_two_classifiers_share_the_stream_and_one_survives_the_other(
    service_settings: Callable[..., Any], tiny_models: Path, sessions: Any, tmp_path: Path, unique: str
) -> None:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    await ensure_topics(settings.kafka, [settings.topics.news_raw, settings.topics.chat_raw])  # before both start
    n = 3_000
    group = f"cls-{unique}"
    counted = counter(sessions, f"s{unique}-")

    async def members() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
        await admin.start()
        try:
            (response,) = await admin.describe_consumer_groups([group])
            (described,) = response.to_object()["groups"]
            return len(described["members"]) if described["state"] == "Stable" else 0
        finally:
            await admin.close()

    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": group, "TW_CLASSIFIER_BATCH_MAX": "50"}
    with running("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}"):
        first = start_service("classifier", settings, tmp_path, "-a", **env)
        second = start_service("classifier", settings, tmp_path, "-b", **env)
        try:
            await wait_until(lambda: _equals(members, 2), timeout=90)
            feeder = asyncio.create_task(produce_news(settings, f"s{unique}-", n, burst=50, pause_s=0.25, keyed=True))
            await wait_until(lambda: at_least(counted, 500), timeout=90)
            second.send_signal(signal.SIGKILL)
            await asyncio.to_thread(second.wait, 30)
            await feeder
            try:
                await wait_until(lambda: at_least(counted, n), timeout=180)
            except AssertionError:
                raise AssertionError(log_tail(tmp_path, "classifier-a")) from None
            await asyncio.sleep(1)  # anything extra would show up now
            assert await counted() == n
            assert first.poll() is None, log_tail(tmp_path, "classifier-a")
        finally:
            stop(first)
            stop(second)
    assert await dlq_ops.list_entries(settings.kafka, settings.topics.news_raw) == []


async def _equals(fn: Callable[[], Any], n: int) -> bool:
    return bool(await fn() == n)
