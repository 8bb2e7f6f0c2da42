"""A scored event the text.scored topic refuses (larger than its ``max.message.bytes``):
its record is dead-lettered with the refusal as its reason and the rest is published, on
a new producer (review finding: the test fails on the code before the fix, where every
KafkaError was retried, so the classifier retried the refused batch forever with
warnings and scored nothing after it)."""

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
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics

pytestmark = pytest.mark.integration

SCORED_LIMIT = 3_000  # a scored event of a short text is well under it; one storing 3,750 characters is over


async def test_a_scored_event_the_topic_refuses_is_dead_lettered_and_the_rest_is_published(
    service_settings: Callable[..., Any], tiny_models: Path, tmp_path: Path, unique: str
) -> None:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw])
    await ensure_topics(settings.kafka, [topics.text_scored], configs={"max.message.bytes": str(SCORED_LIMIT)})
    now = datetime.now(UTC).isoformat()

    def raw(event_id: str, text: str = "Markets fall") -> bytes:
        return json.dumps({"id": event_id, "text": text, "event_time": now}).encode()

    big = raw("big", "Markets rally as the bank holds. " * 114)
    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    with running("classifier", settings, tmp_path, **env) as proc:

        async def scored(ids: set[str]) -> bool:
            assert proc.poll() is None, log_tail(tmp_path, "classifier")
            got = {json.loads(r.value)["id"] for r in await topic_records(settings, topics.text_scored)}
            return ids <= got

        # first some events the producer publishes, so the refused one leaves a gap in its
        # sequence of that partition (the broker takes any sequence from a producer it has
        # no state for); then the refused one, in a batch with others, and more behind it
        await produce(settings, topics.news_raw, [raw(f"before-{i}") for i in range(3)])
        await wait_until(lambda: scored({f"before-{i}" for i in range(3)}), timeout=90)
        after = [raw(f"after-{i}") for i in range(3)]
        await produce(settings, topics.news_raw, [after[0], big, *after[1:]])
        await produce(settings, topics.news_raw, [raw(f"later-{i}") for i in range(3)])
        want = {f"{p}-{i}" for p in ("before", "after", "later") for i in range(3)}
        await wait_until(lambda: scored(want), timeout=60)

        async def dead_lettered() -> list[dlq_ops.DlqEntry] | None:
            entries = await dlq_ops.list_entries(settings.kafka, topics.news_raw, 100)
            return entries or None

        dead = await wait_until(dead_lettered, timeout=30)
        assert proc.poll() is None, log_tail(tmp_path, "classifier")
    published = {json.loads(r.value)["id"] for r in await topic_records(settings, topics.text_scored)}
    assert published == want  # the refused one is not there, every other is
    assert [e.value for e in dead] == [big]  # its original record, once
    assert dead[0].error_class == "MessageSizeTooLargeError"
    assert dead[0].meta is not None
    reason = dead[0].meta.reason
    assert f"{topics.text_scored} refused the scored event" in reason and "max.message.bytes" in reason, reason
