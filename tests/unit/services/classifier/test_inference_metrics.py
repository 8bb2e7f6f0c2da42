"""The classifier exports the documented ``tonewatch_inference_*`` metrics: its models
observe the process's :func:`~shared.inference.metrics.inference_metrics` (on the registry
its ``/metrics`` serves). ``InferenceMetrics`` was never created, and created with its
default prefix it registered ``tonewatch_inference_latency_seconds`` a second time beside
:mod:`shared.metrics`, which prometheus_client refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry

from services.classifier.classify import Classify
from shared.events import RawChat, RawNews
from shared.inference.batching import FloatArray, Padded
from shared.inference.engine import Classifier
from shared.inference.metrics import InferenceMetrics
from shared.inference.registry import ModelEntry
from shared.inference.settings import InferenceSettings
from shared.inference.tokenize import TextTokenizer
from shared.metrics import metrics

LABELS = ("a", "b")
MODEL = "metrics-test-model"


class _Model:
    """An ``OrtModel`` stand-in on CPU."""

    kind = "cpu"
    cuda_graphs = False
    has_token_type_ids = False
    providers: ClassVar[list[str]] = ["CPUExecutionProvider"]
    intra_op_threads = 1

    def run(self, padded: Padded) -> FloatArray:
        return np.zeros((padded.input_ids.shape[0], len(LABELS)), dtype=np.float32)


def _classifier(task: str) -> Classifier:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    tok = TextTokenizer(Tokenizer(WordLevel({"[PAD]": 0, "[UNK]": 1}, unk_token="[UNK]")), 16)
    entry = ModelEntry(task, "v9", Path("/nonexistent"), LABELS, {}, 16, MODEL)
    model: Any = _Model()
    return Classifier(entry, model, tok, InferenceSettings(), "int8", "sha")


def test_inference_metrics_register_beside_the_shared_ones() -> None:
    registry = CollectorRegistry()
    metrics(registry)
    made = InferenceMetrics.create(registry)
    made.latency_seconds.labels("sentiment").observe(0.01)
    names = {family.name for family in registry.collect()}
    assert {"tonewatch_inference_latency_seconds", "tonewatch_inference_predict_seconds"} <= names
    assert registry.get_sample_value("tonewatch_inference_predict_seconds_count", {"task": "sentiment"}) == 1


async def test_the_classifier_exports_its_models_metrics_after_a_batch() -> None:
    def sample(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    before = sample("tonewatch_inference_batch_size_count", task="intent") or 0.0
    now = datetime.now(UTC)
    classify = Classify(_classifier("sentiment"), _classifier("intent"))
    try:
        await classify(
            [
                RawNews(id="n1", text="x", event_time=now, source="t"),
                RawChat(id="c1", text="y z", event_time=now, source="t", conversation_id="k1"),
            ]
        )
    finally:
        classify.close()
    for task in ("sentiment", "intent"):
        info = {"task": task, "model": MODEL, "version": "v9", "provider": "CPUExecutionProvider", "variant": "int8"}
        assert sample("tonewatch_inference_model_info", **info) == 1
        assert sample("tonewatch_inference_predict_seconds_count", task=task)
        assert sample("tonewatch_inference_padding_efficiency", task=task) is not None
    assert sample("tonewatch_inference_batch_size_count", task="intent") == before + 1
