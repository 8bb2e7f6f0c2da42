"""Pure aggregation: scored events to bucket deltas per (stream, entity, minute|hour, model version)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shared.events import ScoredEvent

BucketKey = tuple[str, str, datetime, str]


@dataclass
class Delta:
    count: int = 0
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    score_sum: float = 0.0
    confidence_sum: float = 0.0

    def add(self, e: ScoredEvent) -> None:
        self.count += 1
        label = e.sentiment.label
        if label == "negative":
            self.negative += 1
        elif label == "positive":
            self.positive += 1
        else:
            self.neutral += 1
        self.score_sum += e.sentiment_score
        self.confidence_sum += e.sentiment.confidence


def minute_of(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def hour_of(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def aggregate(events: Iterable[ScoredEvent]) -> tuple[dict[BucketKey, Delta], dict[BucketKey, Delta]]:
    """Minute and hour deltas; an event counts once under each of its entities."""
    minutes: dict[BucketKey, Delta] = {}
    hours: dict[BucketKey, Delta] = {}
    for e in events:
        version = e.sentiment.version
        for entity in dict.fromkeys(e.entities):
            minutes.setdefault((e.stream, entity, minute_of(e.event_time), version), Delta()).add(e)
            hours.setdefault((e.stream, entity, hour_of(e.event_time), version), Delta()).add(e)
    return minutes, hours
