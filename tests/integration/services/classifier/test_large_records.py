"""A backlog of articles near the largest a raw event may be, with a byte budget below one
article: the classifier splits its batches by bytes, classifies each large record alone,
and scores every record once (nothing lost, nothing dead-lettered)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from services_proc import log_tail, running
from sink_outage import produce
from tw_testing import topic_records, wait_until

from services.classifier.config import ClassifierSettings
from shared.kafka.clients import ensure_topics
from shared.topics import Topics

pytestmark = pytest.mark.integration


async def test_a_backlog_of_large_records_over_the_byte_budget_is_scored_completely(
    service_settings: Callable[..., Any], tiny_models: Path, tmp_path: Path, unique: str
) -> None:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    now = datetime.now(UTC).isoformat()
    article = "Markets rally as the central bank holds rates. " * 19_000  # about 900 KB
    ids = [f"big-{i}" if i % 3 else f"small-{i}" for i in range(18)]
    values = [
        json.dumps({"id": i, "text": article if i.startswith("big") else "Markets fall", "event_time": now}).encode()
        for i in ids
    ]
    assert max(len(v) for v in values) > 256 * 1024 * 3
    await produce(settings, topics.news_raw, values)  # one key: one partition, in order
    env = {
        "TW_MODELS_DIR": str(tiny_models),
        "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}",
        "TW_CLASSIFIER_BATCH_MAX_BYTES": str(256 * 1024),  # each article over it; the buffer holds 2
    }
    with running("classifier", settings, tmp_path, **env) as proc:

        async def all_scored() -> list[str] | None:
            assert proc.poll() is None, log_tail(tmp_path, "classifier")
            scored = [json.loads(r.value)["id"] for r in await topic_records(settings, topics.text_scored)]
            return scored if len(scored) >= len(ids) else None

        scored = await wait_until(all_scored, timeout=120)
    assert sorted(scored) == sorted(ids)  # each once (scored events are keyed over partitions)
    assert await topic_records(settings, Topics.dlq(topics.news_raw)) == []
