from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.aggregator.buckets import aggregate
from shared.events import Score, ScoredEvent


def ev(i: int, label: str, entities: list[str], minute: int = 5, version: str = "v1") -> ScoredEvent:
    probs = {"negative": 0.1, "neutral": 0.1, "positive": 0.1}
    probs[label] = 0.8
    t = datetime(2026, 1, 1, 10, minute, 30, tzinfo=UTC)
    return ScoredEvent(
        id=f"e{i}",
        stream="news",
        event_time=t,
        received_time=t,
        text="x",
        entities=entities,
        sentiment=Score(label=label, confidence=0.8, probs=probs, model="m", version=version),
    )


def test_counts_per_entity_minute_and_hour() -> None:
    events = [
        ev(1, "negative", ["BP", "_all"]),
        ev(2, "positive", ["_all"]),
        ev(3, "neutral", ["BP", "BP", "_all"], 59),
    ]
    minutes, hours = aggregate(events)
    bp5 = minutes[("news", "BP", datetime(2026, 1, 1, 10, 5, tzinfo=UTC), "v1")]
    assert (bp5.count, bp5.negative, bp5.neutral, bp5.positive) == (1, 1, 0, 0)
    assert bp5.score_sum == pytest.approx(-0.7)
    all_hour = hours[("news", "_all", datetime(2026, 1, 1, 10, tzinfo=UTC), "v1")]
    assert all_hour.count == 3
    bp_hour = hours[("news", "BP", datetime(2026, 1, 1, 10, tzinfo=UTC), "v1")]
    assert bp_hour.count == 2  # the duplicated entity counts once


def test_model_versions_are_separate_buckets() -> None:
    minutes, _ = aggregate([ev(1, "negative", ["_all"], version="v1"), ev(2, "negative", ["_all"], version="v2")])
    assert len(minutes) == 2
