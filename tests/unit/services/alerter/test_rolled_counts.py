"""Hourly totals with the minutes at the windows' edges (what the alerter loads for a
rule): every observation equals the one over every minute (what it loaded before)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from services.alerter.detect import (
    HOUR,
    MINUTE,
    CumulativeCounts,
    DetectorConfig,
    RolledCounts,
    observe,
    spans,
)

BASE = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 92


def _random_minutes(seed: int) -> dict[datetime, tuple[int, int]]:
    """92 days, about one minute in three with data, denser and sparser stretches."""
    rng = random.Random(seed)
    out = {}
    for i in range(DAYS * 1440):
        if rng.random() < (0.6 if (i // 1000) % 3 else 0.1):
            c = rng.randint(1, 9)
            out[BASE + i * MINUTE] = (c, rng.randint(0, c))
    return out


MINUTES = _random_minutes(5)


def _config(window_s: int) -> DetectorConfig:
    return DetectorConfig(
        window_s=window_s,
        min_volume=5,
        abs_threshold=0.3,
        z_threshold=1.0,
        baseline="ewma",
        cooldown_s=600,
        resolve_after_s=300,
    )


def _rolled(first: datetime, last: datetime, cfg: DetectorConfig) -> RolledCounts:
    """What ``store.load_windows`` reads: the minutes in the minute spans, each hour's sum
    (as the aggregator keeps it) in the hour spans."""
    minute_spans, hour_spans = spans(first, last, cfg)
    minutes = {t: v for t, v in MINUTES.items() if any(a <= t < b for a, b in minute_spans)}
    hours: dict[datetime, tuple[int, int]] = {}
    for t, (c, n) in MINUTES.items():
        h = t.replace(minute=0)
        if any(a <= h < b for a, b in hour_spans):
            hc, hn = hours.get(h, (0, 0))
            hours[h] = (hc + c, hn + n)
    return RolledCounts(minutes, hours)


LAST = BASE + (DAYS * 1440 - 1) * MINUTE
RANGES = {
    "one minute": (LAST, LAST),
    "one minute on the hour": (LAST - 59 * MINUTE, LAST - 59 * MINUTE),
    "one minute before the hour": (LAST - 60 * MINUTE, LAST - 60 * MINUTE),
    "a few minutes across an hour": (LAST - 63 * MINUTE, LAST - 55 * MINUTE),
    "a day (a first look)": (LAST - 1439 * MINUTE, LAST),
    "a day off the hour": (LAST - 1500 * MINUTE, LAST - 37 * MINUTE),
}


@pytest.mark.parametrize("window_s", [60, 300, 900, 3_600, 5_400, 86_400, 7 * 86_400])
@pytest.mark.parametrize("name", list(RANGES))
def test_hourly_totals_and_edge_minutes_observe_exactly_what_every_minute_does(window_s: int, name: str) -> None:
    first, last = RANGES[name]
    cfg = _config(window_s)
    everything = CumulativeCounts(MINUTES)
    rolled = _rolled(first, last, cfg)
    t = first
    while t <= last:
        assert observe(rolled, t, cfg) == observe(everything, t, cfg), (name, t)
        t += MINUTE
    # every minute evaluated is there minute by minute (a first look starts at the first with data)
    assert {m for m in MINUTES if first <= m <= last} <= set(rolled)


@pytest.mark.parametrize("window_s", [60, 300, 900, 3_600, 86_400, 7 * 86_400])
def test_the_spans_tile_the_windows_and_hours_are_whole(window_s: int) -> None:
    cfg = _config(window_s)
    first, last = RANGES["a day off the hour"]
    minute_spans, hour_spans = spans(first, last, cfg)
    tiles = sorted(minute_spans + hour_spans)
    assert tiles[0][0] == first - 13 * timedelta(seconds=window_s) + MINUTE and tiles[-1][1] == last + MINUTE
    assert all(a[1] == b[0] for a, b in pairwise(tiles))
    assert all(a.minute == 0 and b.minute == 0 and b > a for a, b in hour_spans)


def test_a_seven_day_rule_reads_hours_and_a_few_hundred_minutes_not_every_minute() -> None:
    minute_spans, hour_spans = spans(LAST, LAST, _config(7 * 86_400))
    assert sum((b - a) / MINUTE for a, b in minute_spans) <= 14 * 60
    assert sum((b - a) / HOUR for a, b in hour_spans) >= 13 * 7 * 24 - 14


@pytest.mark.parametrize("window_s", [120, 300, 900])
def test_short_windows_read_every_minute_as_before(window_s: int) -> None:
    minute_spans, hour_spans = spans(LAST - 30 * MINUTE, LAST, _config(window_s))
    assert hour_spans == [] and minute_spans == [
        (LAST - 30 * MINUTE - 13 * timedelta(seconds=window_s) + MINUTE, LAST + MINUTE)
    ]


def test_a_window_edge_inside_an_hour_given_as_a_total_is_refused() -> None:
    rolled = RolledCounts({}, {BASE: (10, 2)})
    assert rolled.window(BASE + 59 * MINUTE, 60) == (10, 2)
    with pytest.raises(ValueError, match="inside an hour"):
        rolled.window(BASE + 30 * MINUTE, 60)


def test_nothing_to_evaluate_reads_nothing() -> None:
    assert spans(LAST, LAST - MINUTE, _config(300)) == ([], [])
