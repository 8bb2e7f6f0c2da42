"""A classifier that stops after dead-lettering a batch and before acknowledging it: the
restarted classifier re-reads the batch and, reading its DLQ back, does not write those
dead letters again."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from services_proc import log_tail, running, start_service, stop
from sink_outage import produce
from tw_testing import committed_offsets, wait_until

from services.classifier.config import ClassifierSettings
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics

pytestmark = pytest.mark.integration


def _records(unique: str, n_bad: int) -> tuple[list[bytes], list[bytes]]:
    """All records in order (bad ones with a good one every third, a last good one), and
    the bad ones: undecodable or invalid, each value distinct."""
    now = datetime.now(UTC).isoformat()
    records: list[bytes] = []
    bad: list[bytes] = []
    for i in range(n_bad):
        value = b"garbage %d" % i if i % 2 else json.dumps({"id": f"{unique}-bad-{i}", "text": ""}).encode()
        bad.append(value)
        records.append(value)
        if i % 3 == 0:
            records.append(json.dumps({"id": f"{unique}-good-{i}", "text": "Markets rise", "event_time": now}).encode())
    records.append(json.dumps({"id": f"{unique}-last", "text": "Markets fall", "event_time": now}).encode())
    return records, bad


async def test_a_batch_dead_lettered_before_a_crash_is_not_dead_lettered_again_on_restart(
    service_settings: Callable[..., Any], tiny_models: Path, tmp_path: Path, unique: str
) -> None:
    """The first run stops on a fail point after its first batch's scored events and dead
    letters are written, before the batch is acknowledged: nothing of it is committed.
    The restarted classifier re-reads the batch; every bad record is in the DLQ exactly
    once (before the DLQ was read back, the batch's dead letters were written twice)."""
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    records, bad = _records(unique, 30)
    await produce(settings, topics.news_raw, records)
    group = f"cls-{unique}"
    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": group, "TW_CLASSIFIER_DLQ_MAX_RATIO": "1"}

    crashed = start_service(
        "classifier", settings, tmp_path, "-failpoint", TW_FAILPOINTS="after_publish:1:raise", **env
    )
    try:
        code = await asyncio.to_thread(crashed.wait, 90)
    finally:
        stop(crashed)
    crash_log = log_tail(tmp_path, "classifier-failpoint", 200_000)
    assert code == 1 and "fail point after_publish" in crash_log, crash_log[-3000:]
    first = await dlq_ops.list_entries(settings.kafka, topics.news_raw, 1000)
    assert first, "the first run dead-lettered nothing before it stopped: nothing to test"
    first_offset = min(e.meta.offset for e in first if e.meta)
    committed = await committed_offsets(settings, group)  # the batch is re-read on restart
    assert all(o <= first_offset for tp, o in committed.items() if tp.topic == topics.news_raw), committed

    async def all_acknowledged() -> bool:
        # acknowledged (so committed) only once a batch's scored events and dead letters are written
        committed = await committed_offsets(settings, group)
        return sum(o for tp, o in committed.items() if tp.topic == topics.news_raw) == len(records)

    with running("classifier", settings, tmp_path, **env) as proc:
        try:
            await wait_until(all_acknowledged, timeout=90, interval=0.5)
        except AssertionError:
            raise AssertionError(log_tail(tmp_path, "classifier")) from None
        assert proc.poll() is None, log_tail(tmp_path, "classifier")
    dead = await dlq_ops.list_entries(settings.kafka, topics.news_raw, 1000)
    places = Counter((e.meta.original_topic, e.meta.partition, e.meta.offset) for e in dead if e.meta)
    assert Counter(e.value for e in dead) == Counter(bad), f"{len(first)} dead-lettered before the stop"
    assert set(places.values()) == {1} and len(places) == len(bad)
