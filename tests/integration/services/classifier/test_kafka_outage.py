"""The Kafka broker stopped for 20 seconds mid-stream and restarted: the classifier
and the aggregator stay up, reconnect and go on; nothing is lost, counted twice or
dead-lettered; and the client library's retry storm does not flood the logs."""

from __future__ import annotations

import asyncio
import re
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

OUTAGE_S = 20


async def test_kafka_down_20s(
    service_settings: Callable[..., Any], tiny_models: Path, sessions: Any, tmp_path: Path, unique: str
) -> None:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    n = 1_500
    broker_up = asyncio.Event()
    broker_up.set()
    counted = counter(sessions, f"k{unique}-")
    stack = StackSettings()
    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    with (
        running("classifier", settings, tmp_path, **env) as cls,
        running("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}") as agg,
    ):
        feeder = asyncio.create_task(
            produce_news(settings, f"k{unique}-", n, text="Shares slump {i}", burst=50, gate=broker_up)
        )
        await wait_until(lambda: at_least(counted, 200), timeout=90)
        log_size = {name: _size(tmp_path, name) for name in ("classifier", "aggregator")}
        broker_up.clear()
        await asyncio.to_thread(manager.down, stack, only=["kafka"])
        try:
            at_outage = await counted()
            await asyncio.sleep(OUTAGE_S)  # the outage itself, not a synchronisation
            assert cls.poll() is None, log_tail(tmp_path, "classifier")
            assert agg.poll() is None, log_tail(tmp_path, "aggregator")
        finally:
            up = await asyncio.to_thread(manager.up, stack, only=["kafka"])
            broker_up.set()
        assert up.ok, up
        assert at_outage < n, "the stream was drained before the outage"
        await feeder
        await sessions.kw["bind"].dispose()
        await wait_until(lambda: at_least(counted, n), timeout=180)
        await asyncio.sleep(1)
        assert await counted() == n
        assert cls.poll() is None and agg.poll() is None
        # the last window's count is written once the storm has been quiet for a window
        flushed = "like this held back in"
        await wait_until(lambda: all(flushed in _tail(tmp_path, name, log_size) for name in log_size), timeout=40)
    for name in ("classifier", "aggregator"):
        outage_log = _tail(tmp_path, name, log_size)
        lines = [line for line in outage_log.splitlines() if " aiokafka" in line]
        # Unthrottled, aiokafka writes about 80 lines a second per service here.
        assert len(lines) < 150, (name, len(lines), "\n".join(lines[-20:]))
        assert "more like this in the last" in outage_log, (name, outage_log[-3000:])
        # A producer holding messages for a leaderless partition once spun here at about
        # 5,500 failed metadata updates a second (shared.kafka.metadata_backoff).
        assert _failed_metadata_updates(outage_log) < 3_000, (name, "\n".join(lines[-20:]))
    assert await dlq_ops.list_entries(settings.kafka, settings.topics.news_raw) == []
    assert await dlq_ops.list_entries(settings.kafka, settings.topics.text_scored) == []


def _failed_metadata_updates(log: str) -> int:
    """Failed metadata updates logged, counting those the log filter held back."""
    total = 0
    for line in log.splitlines():
        if "Unable to update metadata" not in line:
            continue
        if m := re.search(r"\[and (\d+) more like this", line):
            total += 1 + int(m.group(1))
        elif m := re.search(r"\[the last of (\d+) like this", line):
            total += int(m.group(1))
        else:
            total += 1
    return total


def _tail(log_dir: Path, name: str, since: dict[str, int]) -> str:
    return (log_dir / f"{name}.log").read_text(errors="replace")[since[name] :]


def _size(log_dir: Path, name: str) -> int:
    path = log_dir / f"{name}.log"
    return len(path.read_text(errors="replace")) if path.exists() else 0
