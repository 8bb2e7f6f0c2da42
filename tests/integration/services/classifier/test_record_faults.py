"""Records that stopped the classifier, or lost a detail on their way to the DLQ: a text of
whitespace up to the storage cap is scored and the stream goes on; a lone surrogate escape
is scored as U+FFFD; a header without a value stays null in the dead letter."""

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
from shared.kafka.clients import ensure_topics, make_producer
from shared.topics import Topics

pytestmark = pytest.mark.integration


async def test_a_text_of_whitespace_up_to_the_storage_cap_is_scored_and_the_stream_goes_on(
    service_settings: Callable[..., Any], tiny_models: Path, tmp_path: Path, unique: str
) -> None:
    """Its head split into no word: an IndexError stopped the classifier (exit 1, nothing
    acknowledged), and every restart stopped on the same batch, good records with it."""
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    now = datetime.now(UTC).isoformat()
    texts = {"good-1": "Markets rise", "blank-head": " " * settings.storage_text_chars + "x", "good-2": "Markets fall"}
    await produce(
        settings,
        topics.news_raw,
        [json.dumps({"id": i, "text": t, "event_time": now}).encode() for i, t in texts.items()],
    )
    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    with running("classifier", settings, tmp_path, **env) as proc:

        async def all_scored() -> bool:
            assert proc.poll() is None, log_tail(tmp_path, "classifier")
            scored = await topic_records(settings, topics.text_scored)
            return {json.loads(r.value)["id"] for r in scored} == set(texts)

        await wait_until(all_scored, timeout=90)
    assert await topic_records(settings, Topics.dlq(topics.news_raw)) == []


async def test_a_lone_surrogate_escape_is_scored_as_the_replacement_character(
    service_settings: Callable[..., Any], tiny_models: Path, tmp_path: Path, unique: str
) -> None:
    """``"\\ud800"`` is valid JSON but no text: the tokenizer raised on it, so the record was
    dead-lettered (and, scored, PostgreSQL refused it: 22P02)."""
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    now = datetime.now(UTC).isoformat()
    value = json.dumps({"id": f"{unique}-s", "text": "ACME falls \ud800 hard", "event_time": now}).encode()
    assert b"\\ud800" in value
    await produce(settings, topics.news_raw, [value])
    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    with running("classifier", settings, tmp_path, **env) as proc:

        async def scored() -> list[dict[str, Any]]:
            assert proc.poll() is None, log_tail(tmp_path, "classifier")
            got = [json.loads(r.value) for r in await topic_records(settings, topics.text_scored)]
            return [e for e in got if e["id"] == f"{unique}-s"]

        await wait_until(scored, timeout=90)
        assert [e["text"] for e in await scored()] == ["ACME falls \ufffd hard"]
    assert await topic_records(settings, Topics.dlq(topics.news_raw)) == []


async def test_a_header_without_a_value_stays_null_in_the_dead_letter(
    service_settings: Callable[..., Any], tiny_models: Path, tmp_path: Path, unique: str
) -> None:
    """faust's record became the dead letter with b"None" for a null header, and a replay
    sent that on as the header's value."""
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    producer = make_producer(settings.kafka, client_id="test")
    await producer.start()
    try:
        await producer.send_and_wait(topics.news_raw, b"not json", key=b"k", headers=[("trace", None), ("tag", b"v")])
    finally:
        await producer.stop()
    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    with running("classifier", settings, tmp_path, **env):
        (dead,) = await wait_until(lambda: topic_records(settings, Topics.dlq(topics.news_raw)), timeout=60)
    assert dead.value == b"not json"
    assert [(k, v) for k, v in dead.headers if not k.startswith("tw.")] == [("trace", None), ("tag", b"v")]
