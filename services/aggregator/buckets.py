"""Pure aggregation: scored events to bucket deltas per (stream, entity, minute|hour, model version)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.entities import ALL
from shared.events import ScoredEvent

BucketKey = tuple[str, str, datetime, str]
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


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


def counted_under(e: ScoredEvent) -> list[str]:
    """The entities an event counts under: its own, each once, and always ``_all``.

    The contract lets ``entities`` be empty (it defaults to []) and the classifier tags
    every event ``_all``; an event without it would still be recorded in the ledger but
    land in no trend, and a redelivery tagged ``_all`` would then be skipped as counted.
    """
    return list(dict.fromkeys([*e.entities, ALL]))


def aggregate(events: Iterable[ScoredEvent]) -> tuple[dict[BucketKey, Delta], dict[BucketKey, Delta]]:
    """Minute and hour deltas; an event counts once under each of its entities and ``_all``."""
    minutes: dict[BucketKey, Delta] = {}
    hours: dict[BucketKey, Delta] = {}
    for e in events:
        version = e.sentiment.version
        for entity in counted_under(e):
            minutes.setdefault((e.stream, entity, minute_of(e.event_time), version), Delta()).add(e)
            hours.setdefault((e.stream, entity, hour_of(e.event_time), version), Delta()).add(e)
    return minutes, hours


# Trend retention (TW_AGGREGATOR_TREND_RETENTION_DAYS). A stream's clock is its newest
# bucket in either table (a minute bucket, or an hour bucket's start: a stream whose minute
# rows are gone still has one), or now if that is earlier; its cutoff is the retention
# before that. A bucket is past the cutoff once all of it is older (a minute bucket one
# minute after its start, an hour bucket one hour after): the retention run deletes it,
# and the aggregator does not write it.
def trend_cutoff(clock: datetime, days: float) -> datetime | None:
    """The cutoff ``days`` before ``clock``; None (keep everything) for 0 days or a cutoff
    that would fall before the calendar (within an hour of year 1, or before it)."""
    if days <= 0:
        return None
    try:
        cutoff = clock - timedelta(days=days)
        if cutoff - HOUR > _EARLIEST:
            return cutoff
    except OverflowError:
        pass
    return None


def stream_clock(now: datetime, *newest: datetime | None) -> datetime:
    """A stream's clock: its newest bucket (of those given, None for an empty table), at most ``now``."""
    known = [t for t in newest if t is not None]
    return min(now, max(known)) if known else now


def newest_minutes(events: Iterable[ScoredEvent]) -> dict[str, datetime]:
    """Each stream's newest minute bucket among ``events``."""
    newest: dict[str, datetime] = {}
    for e in events:
        m = minute_of(e.event_time)
        if e.stream not in newest or m > newest[e.stream]:
            newest[e.stream] = m
    return newest


def past_cutoff(bucket: datetime, width: timedelta, cutoff: datetime | None) -> bool:
    """Whether all of the bucket (its start, ``width`` long) is older than ``cutoff``."""
    return cutoff is not None and bucket <= cutoff - width  # (a bucket near year 9999 plus its width overflows)


def drop_past_cutoffs(
    deltas: dict[BucketKey, Delta], width: timedelta, cutoffs: Mapping[str, datetime | None]
) -> dict[BucketKey, Delta]:
    """The deltas whose bucket is not past its stream's cutoff."""
    return {k: d for k, d in deltas.items() if not past_cutoff(k[2], width, cutoffs.get(k[0]))}
