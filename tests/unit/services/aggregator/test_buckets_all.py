"""Every event counts under ``_all``: the contract lets ``entities`` be empty (it defaults
to []), and such an event was recorded as counted but landed in no trend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.aggregator.buckets import aggregate, counted_under
from shared.events import ScoredEvent, parse

T = datetime(2026, 1, 1, 10, 5, tzinfo=UTC)


def ev(i: int, **extra: object) -> ScoredEvent:
    record = {
        "id": f"e{i}",
        "stream": "chat",
        "event_time": "2026-01-01T10:05:30Z",
        "received_time": "2026-01-01T10:05:31Z",
        "text": "x",
        "sentiment": {
            "label": "negative",
            "confidence": 0.9,
            "probs": {"negative": 0.9},
            "model": "m",
            "version": "v1",
        },
    }
    return parse(ScoredEvent, record | extra)


def test_an_event_without_entities_counts_under_all() -> None:
    e = ev(1)  # no "entities" key at all: the contract's default
    assert e.entities == []
    minutes, hours = aggregate([e])
    assert list(minutes) == [("chat", "_all", T, "v1")]
    assert minutes[("chat", "_all", T, "v1")].count == 1
    assert hours[("chat", "_all", T.replace(minute=0), "v1")].count == 1


@pytest.mark.parametrize(
    ("entities", "expected"),
    [
        ([], ["_all"]),
        (["_all"], ["_all"]),
        (["ACME"], ["ACME", "_all"]),
        (["ACME", "_all"], ["ACME", "_all"]),
        (["_all", "ACME", "_all", "ACME"], ["_all", "ACME"]),
    ],
)
def test_all_is_added_once_never_twice(entities: list[str], expected: list[str]) -> None:
    e = ev(2, entities=entities)
    assert counted_under(e) == expected
    minutes, _ = aggregate([e])
    assert sorted(k[1] for k in minutes) == sorted(expected)
    assert all(d.count == 1 for d in minutes.values())


def test_events_with_and_without_all_add_up_once_each() -> None:
    minutes, _ = aggregate([ev(3), ev(4, entities=["_all"]), ev(5, entities=["ACME"])])
    assert minutes[("chat", "_all", T, "v1")].count == 3
    assert minutes[("chat", "ACME", T, "v1")].count == 1
