"""The trend retention's cutoffs as the aggregator's writes use them (the retention run
uses the same): a stream's clock is its newest bucket in either table or in the batch, at
most now; a bucket past the cutoff (all of it older) is not written; the events dropped
as too old are logged, the first at once and then at most once a minute."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from services.aggregator.app import TooOldLog
from services.aggregator.buckets import (
    HOUR,
    MINUTE,
    aggregate,
    drop_past_cutoffs,
    newest_minutes,
    past_cutoff,
    stream_clock,
    trend_cutoff,
)
from shared.events import Score, ScoredEvent, Stream
from shared.metrics import metrics

NOW = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def ev(i: int, at: datetime, stream: Stream = "news") -> ScoredEvent:
    probs = {"negative": 0.8, "neutral": 0.1, "positive": 0.1}
    return ScoredEvent(
        id=f"e{i}",
        stream=stream,
        event_time=at,
        received_time=at,
        text="x",
        entities=["_all"],
        sentiment=Score(label="negative", confidence=0.8, probs=probs, model="m", version="v1"),
    )


def test_the_clock_is_the_newest_bucket_of_either_table_at_most_now() -> None:
    hour = datetime(2020, 3, 1, 12, tzinfo=UTC)
    assert stream_clock(NOW, None, hour) == hour  # only hour rows left: the newest hour's start
    assert stream_clock(NOW, hour + 5 * MINUTE, hour) == hour + 5 * MINUTE
    assert stream_clock(NOW, hour - 400 * DAY, hour) == hour  # old minutes under a newer hour
    assert stream_clock(NOW, NOW + 10 * DAY, None) == NOW  # ahead of the clock
    assert stream_clock(NOW, None, None, hour) == hour  # a new stream: the batch's newest minute
    assert stream_clock(NOW, None, None) == NOW


def test_cutoffs_past_the_calendar_or_off_keep_everything() -> None:
    assert trend_cutoff(NOW, 0) is None
    assert trend_cutoff(NOW, 1e12) is None
    year_one = datetime.min.replace(tzinfo=UTC)
    assert trend_cutoff(year_one + 2 * HOUR, 1 / 24) is None  # within the first hour
    assert trend_cutoff(year_one + 3 * HOUR, 1 / 24) == year_one + 2 * HOUR
    assert trend_cutoff(NOW, 93) == NOW - 93 * DAY


def test_a_bucket_is_past_the_cutoff_once_all_of_it_is_older() -> None:
    cutoff = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert past_cutoff(cutoff - MINUTE, MINUTE, cutoff)
    assert not past_cutoff(cutoff - MINUTE + timedelta(seconds=1), MINUTE, cutoff)
    assert not past_cutoff(cutoff, MINUTE, cutoff)
    assert not past_cutoff(datetime(2026, 3, 1, 10, tzinfo=UTC), HOUR, cutoff)  # the cutoff's hour stays
    assert past_cutoff(datetime(2026, 3, 1, 9, 30, tzinfo=UTC), HOUR, cutoff)
    assert not past_cutoff(cutoff - 400 * DAY, MINUTE, None)
    assert not past_cutoff(datetime.max.replace(tzinfo=UTC) - MINUTE, HOUR, cutoff)  # no overflow


def test_only_the_buckets_past_their_streams_cutoff_are_dropped() -> None:
    cutoff = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    events = [
        ev(1, cutoff - timedelta(seconds=30)),  # its minute goes, its hour (the cutoff's) stays
        ev(2, cutoff + timedelta(seconds=30)),
        ev(3, cutoff - 2 * HOUR),
        ev(4, cutoff - 2 * HOUR, "chat"),  # another stream, no cutoff
    ]
    minutes, hours = aggregate(events)
    cutoffs = {"news": cutoff, "chat": None}
    kept_minutes = drop_past_cutoffs(minutes, MINUTE, cutoffs)
    kept_hours = drop_past_cutoffs(hours, HOUR, cutoffs)
    assert sorted((k[0], k[2]) for k in kept_minutes) == [("chat", cutoff - 2 * HOUR), ("news", cutoff)]
    assert sorted((k[0], k[2], d.count) for k, d in kept_hours.items()) == [
        ("chat", datetime(2026, 3, 1, 8, tzinfo=UTC), 1),
        ("news", datetime(2026, 3, 1, 10, tzinfo=UTC), 2),
    ]
    assert newest_minutes(events) == {"news": cutoff, "chat": cutoff - 2 * HOUR}


def test_too_old_events_are_logged_at_once_then_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    t = [0.0]
    log = TooOldLog(interval_s=60, clock=lambda: t[0])
    counted = metrics().trend_events_too_old.labels("aggregator", "news")
    before = counted._value.get()
    cutoff = datetime(2026, 3, 1, tzinfo=UTC)
    with caplog.at_level(logging.WARNING, "tonewatch.aggregator"):
        log({"news": (2, cutoff)})
        t[0] = 10
        log({"news": (3, cutoff), "chat": (1, cutoff)})
        log.flush()  # a retention run: what was held back
        t[0] = 20
        log({"news": (4, cutoff)})
        t[0] = 90
        log({"news": (5, cutoff)})
        log.flush()  # nothing left
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "dropped too old: 2 news events" in lines[0]
    assert "1 chat events" in lines[1] and "3 news events" in lines[1]
    assert "9 news events" in lines[2] and "cutoff 2026-03-01T00:00:00+00:00" in lines[2]
    assert counted._value.get() - before == 14  # every event counted, whether its line was held back or not
