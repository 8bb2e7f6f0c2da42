"""A record the model fails on is dead-lettered; a batch caught by the shutdown is not."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from services.classifier.classify import ClassifierClosed, Classify
from services.classifier.config import ClassifierSettings
from services.classifier.pipeline import ClassifierPipeline
from shared.entities import EntityMatcher
from shared.inference.engine import Prediction
from shared.kafka.records import InRecord


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


def _pipeline(settings: ClassifierSettings, classify: Classify) -> ClassifierPipeline:
    none: Any = None  # publishing and dead-lettering are not reached by prepare()
    return ClassifierPipeline(settings, classify, none, none, lambda: EntityMatcher([]))


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
