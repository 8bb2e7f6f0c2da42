"""PostgreSQL stopped for 30 seconds mid-stream and restarted: the aggregator
holds one batch and retries it (its memory stays bounded by that batch), nothing is
dead-lettered, nothing is lost or counted twice."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alert_scenario import T0, scored
from news_feed import at_least, counter, produce_news
from services_proc import log_tail, running
from sink_outage import dead_letter_values, one_batch_during_postgres_outage
from tw_testing import wait_until

from services.aggregator.config import AggregatorSettings
from services.classifier.config import ClassifierSettings
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics
from shared.stack import manager
from shared.stack.settings import StackSettings

pytestmark = pytest.mark.integration


# shared.kafka.batches, each time a batch fails: "batch of N from topic[partition]@offset failed"
RETRY = re.compile(r"batch of (\d+) from (\S+\[\d+\]@\d+) failed")


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
            log_file = tmp_path / "aggregator.log"
            seen = len(log_file.read_text(errors="replace"))
            await asyncio.sleep(30)  # the outage itself, not a synchronisation
            assert agg.poll() is None, log_tail(tmp_path, "aggregator")
            during = log_file.read_text(errors="replace")[seen:]
        finally:
            await asyncio.to_thread(manager.up, stack, only=["postgres"])
        await feeder
        await sessions.kw["bind"].dispose()  # drop connections that died with the server
        await wait_until(lambda: at_least(counted, n), timeout=120)
        await asyncio.sleep(1)
        assert await counted() == n
    # Through the outage it retried one batch, the same records each time, at most
    # max_batch of them: it neither moved on to later records nor piled them up.
    retries = RETRY.findall(during)
    assert len(retries) >= 2 and len(set(retries)) == 1, during[-3000:]
    assert int(retries[0][0]) <= AggregatorSettings.model_fields["max_batch"].default, retries[0]
    assert "retrying" in log_tail(tmp_path, "aggregator", 200_000)
    assert await dlq_ops.list_entries(settings.kafka, settings.topics.text_scored) == []


async def test_bad_records_in_a_batch_retried_through_an_outage_are_dead_lettered_once(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    """PostgreSQL is down when a batch of three bad records and five scored events
    arrives: the batch is retried until PostgreSQL is back. Each bad record is
    dead-lettered once and each event counted once. Before, every retry dead-lettered
    the bad records again (the dead letters were written before the store)."""
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    counted = counter(sessions, f"b{unique}-")
    good = [
        scored(f"BAD{unique}", i, T0 + timedelta(seconds=i), False, "calm").model_copy(update={"id": f"b{unique}-{i}"})
        for i in range(5)
    ]
    bad = [b"not json %d" % i for i in range(3)]
    values = [bad[0], good[0].to_bytes(), bad[1], *(e.to_bytes() for e in good[1:]), bad[2]]
    await ensure_topics(settings.kafka, [settings.topics.text_scored])
    env = {"TW_AGGREGATOR_GROUP_ID": f"agg-{unique}", "TW_AGGREGATOR_MAX_WAIT_MS": "3000"}  # one batch of 8
    with running("aggregator", settings, tmp_path, **env):
        await one_batch_during_postgres_outage(settings, "aggregator", tmp_path, settings.topics.text_scored, values)
        await sessions.kw["bind"].dispose()  # drop connections that died with the server
        await wait_until(lambda: at_least(counted, 5), timeout=60)
        letters = await dead_letter_values(settings, settings.topics.text_scored, len(bad))
    assert sorted(letters) == sorted(bad), letters
    assert await counted() == 5
