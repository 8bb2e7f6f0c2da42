"""A record the model fails on is dead-lettered; a batch caught by the shutdown is not,
nor one the model fails on while it fails on a known-good text too (an infrastructure fault)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from services.classifier.classify import ClassifierClosed, Classify
from services.classifier.config import ClassifierSettings
from services.classifier.pipeline import ClassifierPipeline, ModelUnavailable
from services.classifier.score import build_scored
from shared.entities import EntityMatcher
from shared.events import RawEvent, ScoredEvent
from shared.inference.engine import Prediction
from shared.kafka.records import InRecord
from shared.metrics import metrics


class _Model:
    """Sentiment stand-in: fails on texts containing 'boom'."""

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if any("boom" in t for t in texts):
            raise ValueError("cannot score this")
        probs = {"negative": 0.1, "neutral": 0.8, "positive": 0.1}
        return [Prediction("neutral", 0.8, probs, "m", "v1", "sha") for _ in texts]


def _records(settings: ClassifierSettings, *texts: str) -> list[InRecord]:
    topic = settings.topics.news_raw
    return [
        InRecord(
            topic,
            0,
            i,
            None,
            json.dumps({"id": f"e{i}", "text": t, "event_time": "2026-01-01T00:00:00Z"}).encode(),
            [],
            None,
        )
        for i, t in enumerate(texts)
    ]


def _pipeline(settings: ClassifierSettings, classify: Classify, **options: Any) -> ClassifierPipeline:
    none: Any = None  # publishing and dead-lettering are not reached by prepare()
    return ClassifierPipeline(settings, classify, none, none, lambda: EntityMatcher([]), **options)


async def test_a_record_the_model_fails_on_is_set_aside_with_its_reason() -> None:
    settings = ClassifierSettings()
    classify = Classify(_Model(), None)  # type: ignore[arg-type]
    try:
        prepared = await _pipeline(settings, classify).prepare(_records(settings, "fine", "boom", "also fine"))
    finally:
        classify.close()
    assert [e.id for e in prepared.scored] == ["e0", "e2"]
    assert [(b.offset, b.error_class) for b in prepared.bad] == [(1, "ClassificationError")]


async def test_a_batch_caught_by_the_shutdown_is_not_dead_lettered() -> None:
    settings = ClassifierSettings()
    classify = Classify(_Model(), None)  # type: ignore[arg-type]
    classify.close()
    with pytest.raises(ClassifierClosed):
        await classify([])
    with pytest.raises(ClassifierClosed):  # not a Prepared with every record in ``bad``
        await _pipeline(settings, classify).prepare(_records(settings, "fine", "boom"))


class _NanModel:
    """A model whose output for texts containing 'nan' overflowed: NaN probabilities."""

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        nan = float("nan")
        fine = {"negative": 0.1, "neutral": 0.8, "positive": 0.1}
        return [
            Prediction("neutral", nan, dict.fromkeys(fine, nan), "m", "v1", "sha")
            if "nan" in t
            else Prediction("neutral", 0.8, fine, "m", "v1", "sha")
            for t in texts
        ]


async def test_a_verdict_no_scored_event_can_carry_is_set_aside_not_raised_for_the_batch() -> None:
    """ScoredEvent refuses NaN probabilities; raised from scoring, the whole batch failed
    and the classifier stopped on it again after every restart."""
    settings = ClassifierSettings()
    classify = Classify(_NanModel(), None)  # type: ignore[arg-type]
    try:
        prepared = await _pipeline(settings, classify).prepare(_records(settings, "fine", "nan here", "also fine"))
    finally:
        classify.close()
    assert [e.id for e in prepared.scored] == ["e0", "e2"]
    assert [(b.offset, b.error_class) for b in prepared.bad] == [(1, "ClassificationError")]
    assert "no valid scored event" in prepared.bad[0].reason


class _LostGpu:
    """A model that fails on every text, as on a lost GPU, for its first ``failures`` calls."""

    def __init__(self, failures: int = 1_000_000) -> None:
        self.failures = failures
        self.calls = 0

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return _Model().predict(texts)


async def test_records_are_not_dead_lettered_while_the_model_fails_on_every_text() -> None:
    """Every record of the batch failed alone too, so each was dead-lettered as a
    ClassificationError (and the ratio guard then acknowledged the batch): a lost GPU moved
    good records to the DLQ. The model fails on the known-good probe as well: the batch is
    retried, and classified once the model works again."""
    settings = ClassifierSettings()
    model = _LostGpu(failures=5)  # the batch, each of the 3 records alone, the probe
    classify = Classify(model, None)  # type: ignore[arg-type]
    retries = metrics().infra_retries.labels("classifier")
    before = retries._value.get()
    try:
        prepared = await _pipeline(settings, classify).prepare(_records(settings, "fine", "also fine", "fine too"))
    finally:
        classify.close()
    assert prepared.bad == []
    assert [e.id for e in prepared.scored] == ["e0", "e1", "e2"]
    assert retries._value.get() == before + 1


async def test_a_model_that_keeps_failing_stops_the_classifier_and_dead_letters_nothing() -> None:
    settings = ClassifierSettings()
    classify = Classify(_LostGpu(), None)  # type: ignore[arg-type]
    pipeline = _pipeline(settings, classify, model_patience_s=1.0)
    try:
        with pytest.raises(ModelUnavailable, match="known-good text") as raised:
            await pipeline.prepare(_records(settings, "fine", "also fine"))
    finally:
        classify.close()
    assert "illegal memory access" in str(raised.value) and "giving up" in str(raised.value)


async def test_a_stop_while_the_model_fails_leaves_the_batch_to_the_next_run() -> None:
    settings = ClassifierSettings()
    classify = Classify(_LostGpu(), None)  # type: ignore[arg-type]
    stop = asyncio.Event()
    pipeline = _pipeline(settings, classify, stop=stop)
    try:
        preparing = asyncio.create_task(pipeline.prepare(_records(settings, "fine")))
        await asyncio.sleep(0.2)
        stop.set()
        with pytest.raises(ClassifierClosed):
            await asyncio.wait_for(preparing, timeout=5)
    finally:
        classify.close()


async def test_a_text_of_whitespace_up_to_the_storage_cap_is_scored() -> None:
    """Its head split into no word, and the IndexError raised from scoring stopped the
    classifier on that batch after every restart."""
    settings = ClassifierSettings()
    classify = Classify(_Model(), None)  # type: ignore[arg-type]
    try:
        records = _records(settings, "fine", " " * settings.storage_text_chars + "x", "also fine")
        prepared = await _pipeline(settings, classify).prepare(records)
    finally:
        classify.close()
    assert [e.id for e in prepared.scored] == ["e0", "e1", "e2"] and prepared.bad == []
    assert prepared.scored[1].entities == ["_all"]


async def test_a_record_scoring_fails_on_unforeseen_is_dead_lettered_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def build(event: RawEvent, *args: Any, **kwargs: Any) -> ScoredEvent:
        if event.text == "odd":
            raise IndexError("list index out of range")
        return build_scored(event, *args, **kwargs)

    monkeypatch.setattr("services.classifier.pipeline.build_scored", build)
    settings = ClassifierSettings()
    classify = Classify(_Model(), None)  # type: ignore[arg-type]
    try:
        prepared = await _pipeline(settings, classify).prepare(_records(settings, "fine", "odd", "also fine"))
    finally:
        classify.close()
    assert [e.id for e in prepared.scored] == ["e0", "e2"]
    assert [(b.offset, b.error_class, b.reason) for b in prepared.bad] == [
        (1, "IndexError", "cannot score: list index out of range")
    ]


async def test_a_batch_is_scored_in_a_worker_thread_in_the_order_it_came(monkeypatch: pytest.MonkeyPatch) -> None:
    """Redaction and entity tagging of a batch ran on the event loop: 90 ms a batch at the
    default 4,000 stored characters, 4.8 s for 80 dense articles at 100,000."""
    threads: list[bool] = []

    def build(*args: Any, **kwargs: Any) -> ScoredEvent:
        threads.append(threading.current_thread() is not threading.main_thread())
        return build_scored(*args, **kwargs)

    monkeypatch.setattr("services.classifier.pipeline.build_scored", build)
    settings = ClassifierSettings()
    classify = Classify(_Model(), None)  # type: ignore[arg-type]
    texts = [f"text {i}" for i in range(40)]
    try:
        prepared = await _pipeline(settings, classify).prepare(_records(settings, *texts))
    finally:
        classify.close()
    assert [e.id for e in prepared.scored] == [f"e{i}" for i in range(40)]
    assert [e.text for e in prepared.scored] == texts
    assert threads == [True] * 40
