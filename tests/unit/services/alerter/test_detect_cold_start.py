"""Cold start: a surge after a quiet night (fewer than ``min_baseline_windows`` of the
baseline's windows with data) is judged against the entity's longer history."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.alerter.detect import (
    MINUTE,
    CumulativeCounts,
    DetectorConfig,
    RolledCounts,
    State,
    minutes,
    observe,
    spans,
    step,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)
DAY = timedelta(days=1)
# the shipped watchlist rule's figures, with the alerter's defaults
WATCHLIST = DetectorConfig(
    window_s=900,
    min_volume=3,
    abs_threshold=0.6,
    z_threshold=1.5,
    baseline="ewma",
    cooldown_s=3600,
    resolve_after_s=900,
    history_s=7 * 86_400,
)
Counts = dict[datetime, tuple[int, int]]


def walk(counts: Counts, cfg: DetectorConfig, first: datetime, last: datetime) -> list[tuple[str, datetime]]:
    cum, state, out = CumulativeCounts(counts), State(), []
    for t in minutes(first, last, 100_000):
        state, action = step(state, observe(cum, t, cfg), cfg, f"a-{t:%d%H%M}")
        if action:
            out.append((action.kind, t))
    return out


def quiet_night_then_surge() -> Counts:
    """Yesterday: 2 headlines every 10 minutes until 22:00, one in five negative. Night:
    nothing. From 07:00: 2 headlines a minute, all negative, for two hours."""
    counts = {T0 - DAY + m * MINUTE: (2, 1 if (m // 10) % 5 == 0 else 0) for m in range(0, 22 * 60, 10)}
    counts.update({T0 + m * MINUTE: (2, 2) for m in range(7 * 60, 9 * 60)})
    return counts


def test_a_surge_after_a_quiet_night_fires_at_once_and_resolves_when_it_ends() -> None:
    events = walk(quiet_night_then_surge(), WATCHLIST, T0 - DAY, T0 + 12 * 60 * MINUTE)
    assert [k for k, _ in events] == ["fire", "resolve"]
    assert events[0][1] <= T0 + 7 * 60 * MINUTE + 2 * MINUTE  # within the surge's first minutes
    # resolves after the surge ends (09:00) has left the 15-minute window, plus the hysteresis
    assert T0 + 9 * 60 * MINUTE <= events[1][1] <= T0 + 9 * 60 * MINUTE + 31 * MINUTE


def test_without_history_the_same_surge_never_fires() -> None:
    """``history_s`` 0: the warm-up as before (the three hours before 07:00 were empty, and
    once three windows had data they were the surge)."""
    assert walk(quiet_night_then_surge(), replace(WATCHLIST, history_s=0), T0 - DAY, T0 + 12 * 60 * MINUTE) == []


def test_the_observation_says_it_was_judged_against_history() -> None:
    counts = CumulativeCounts(quiet_night_then_surge())
    obs = observe(counts, T0 + 7 * 60 * MINUTE + MINUTE, WATCHLIST)
    assert obs.breach and obs.volume == 4 and obs.baseline.windows == 0
    assert obs.baseline.history_volume == 264  # yesterday's 132 slots of 2 headlines
    assert obs.baseline.history_start is not None and obs.baseline.history_start <= T0 - DAY
    # 27 negatives of 264, plus one of each: about a tenth
    assert obs.baseline.mean == pytest.approx(28 / 266)
    assert obs.z is not None and obs.z > 3


def test_a_newly_promoted_model_still_warms_up() -> None:
    """No data older than the baseline's windows (a model version's data starts now): a
    window is not judged against history, so the first hours' calibration is no spike."""
    counts = {T0 + m * MINUTE: (2, 0) for m in (1, 5, 14)}  # a few calm minutes
    counts.update({T0 + m * MINUTE: (2, 2) for m in range(16, 90)})  # then all negative
    assert walk(counts, WATCHLIST, T0, T0 + 3 * 60 * MINUTE) == []
    assert observe(CumulativeCounts(counts), T0 + 20 * MINUTE, WATCHLIST).z is None


def test_history_older_than_history_s_does_not_count() -> None:
    counts = {T0 - 8 * DAY + m * MINUTE: (2, 0) for m in range(0, 600, 10)}  # eight days ago
    counts.update({T0 + m * MINUTE: (2, 2) for m in range(7 * 60, 8 * 60)})
    assert walk(counts, WATCHLIST, T0 - 8 * DAY, T0 + 10 * 60 * MINUTE) == []
    assert walk(counts, replace(WATCHLIST, history_s=9 * 86_400), T0 - 8 * DAY, T0 + 10 * 60 * MINUTE) != []


@pytest.mark.parametrize(
    ("window", "fires"),
    [
        ((3, 2), False),  # two of three: a sparse entity's noise
        ((4, 4), True),
        ((8, 8), True),
        ((10, 7), True),
    ],
)
def test_a_cold_window_is_weighed_by_its_volume(window: tuple[int, int], fires: bool) -> None:
    """Against a usual share of a fifth: the spread is a window of that volume's, and half a
    message comes off the share."""
    counts = {T0 - DAY + m * MINUTE: (5, 1) for m in range(0, 600, 10)}
    counts[T0 + 7 * 60 * MINUTE] = window
    obs = observe(CumulativeCounts(counts), T0 + 7 * 60 * MINUTE, WATCHLIST)
    assert obs.baseline.history_volume == 300 and obs.z is not None
    assert obs.breach is fires


def _sparse(seed: int) -> Counts:
    """Ten days of news in bursts with gaps of hours between them (cold starts)."""
    rng = random.Random(seed)
    out: Counts = {}
    t = T0 - 10 * DAY
    while t < T0:
        for _ in range(rng.randint(1, 40)):
            c = rng.randint(1, 4)
            out[t] = (c, rng.randint(0, c))
            t += rng.randint(1, 3) * MINUTE
        t += rng.randint(60, 14 * 60) * MINUTE
    return out


@pytest.mark.parametrize("window_s", [60, 300, 900, 3_600])
def test_hourly_totals_observe_the_history_exactly_as_every_minute_does(window_s: int) -> None:
    """What the alerter loads (the spans' minutes and hours) gives the same observations,
    cold starts included, as every minute."""
    data = _sparse(3)
    cfg = replace(WATCHLIST, window_s=window_s, history_s=2 * 86_400)
    last = max(data)
    first = last - 1439 * MINUTE
    minute_spans, hour_spans = spans(first, last, cfg)
    kept = {t: v for t, v in data.items() if any(a <= t < b for a, b in minute_spans)}
    hours: Counts = {}
    for t, (c, n) in data.items():
        h = t.replace(minute=0)
        if any(a <= h < b for a, b in hour_spans):
            hc, hn = hours.get(h, (0, 0))
            hours[h] = (hc + c, hn + n)
    rolled, everything = RolledCounts(kept, hours), CumulativeCounts(data)
    cold = 0
    for t in minutes(first, last, 10_000):
        obs = observe(rolled, t, cfg)
        assert obs == observe(everything, t, cfg), t
        cold += obs.baseline.history_start is not None
    assert cold > 0  # the history was used
    # the history's hours are read as totals, not minute by minute
    assert min(a for a, _ in minute_spans + hour_spans) <= first - 2 * DAY


def test_an_alert_fired_on_history_holds_while_a_partial_surge_lasts() -> None:
    """Seven in ten negative for two hours against a usual 35%, after a quiet night: it
    fires on the first three messages, and holds until the surge ends (it resolved after
    18 minutes, judged by the spread of those three messages as the window filled)."""
    start = T0 + 8 * 60 * MINUTE
    counts: Counts = {}
    for i in range(7 * 48):  # a week of one message every 30 minutes, 35% negative, to midnight
        counts[T0 - (i + 1) * 30 * MINUTE] = (1, 1 if i % 20 < 7 else 0)
    pattern = [1, 1, 1, 0, 1, 0, 1, 1, 0, 1]
    counts.update({start + i * MINUTE: (1, pattern[i % 10]) for i in range(120)})
    events = walk(counts, WATCHLIST, start - 60 * MINUTE, start + 4 * 60 * MINUTE)
    assert [k for k, _ in events] == ["fire", "resolve"]
    assert events[0][1] <= start + 3 * MINUTE
    assert events[1][1] >= start + 120 * MINUTE  # not before the surge has ended


def test_the_state_of_an_alert_fired_on_history_is_stored_and_read_back() -> None:
    from services.alerter.store import _from_json, _to_json

    counts = quiet_night_then_surge()
    cum, state = CumulativeCounts(counts), State()
    t = T0 + 7 * 60 * MINUTE
    while state.open_alert is None:
        state, _ = step(state, observe(cum, t, WATCHLIST), WATCHLIST, "a")
        t += MINUTE
    assert state.fired_history and _from_json(_to_json(state)) == state
    # a state stored before the flag existed reads as a fire on the baseline's windows
    old = {k: v for k, v in _to_json(state).items() if k != "fired_history"}
    assert _from_json(old) == replace(state, fired_history=False)


@pytest.mark.parametrize("offset_minutes", [0, 1, 30, 59])
def test_a_baseline_spanning_the_history_has_no_cold_start(offset_minutes: int) -> None:
    """Twelve 14-hour windows span 168 hours, the whole 7-day history: no cold start, at
    any minute of the hour (the history starts on the hour, up to 59 minutes before the
    baseline did, and those minutes fired on 20 messages)."""
    cfg = replace(WATCHLIST, window_s=14 * 3600)
    at = T0 + 8 * DAY + timedelta(hours=18, minutes=offset_minutes)
    window_start = at + MINUTE - timedelta(seconds=cfg.window_s)
    base_start = window_start - 12 * timedelta(seconds=cfg.window_s)
    counts = {base_start - k * MINUTE: (1, 0) for k in range(1, 21)}  # just before the baseline
    counts.update({at - k * MINUTE: (1, 1) for k in range(10)})
    obs = observe(CumulativeCounts(counts), at, cfg)
    assert obs.volume == 10 and obs.baseline.windows == 0
    assert obs.z is None and obs.baseline.history_start is None


def test_an_entity_with_no_history_starts_against_the_streams() -> None:
    """A company just added to the watchlist, whose first news is a burst: judged against the
    whole stream's share over the week before the day (``prior``), as against its own."""
    from services.alerter.detect import prior_days

    start = T0 + 9 * 60 * MINUTE
    counts: Counts = {start + k * MINUTE: (1, 1) for k in range(8)}
    prior = {d: (4_000, 1_000) for d in prior_days(start, start + 60 * MINUTE, WATCHLIST)}
    events = walk_with(counts, WATCHLIST, start, start + 3 * 60 * MINUTE, prior)
    assert [k for k, _ in events] == ["fire", "resolve"] and events[0][1] <= start + 5 * MINUTE
    obs = observe(CumulativeCounts(counts), start + 5 * MINUTE, WATCHLIST, prior)
    assert obs.baseline.stream_prior and obs.baseline.history_volume == 4_000
    assert obs.baseline.mean == pytest.approx(1_001 / 4_002)
    # without the stream's history (none given, or none that day: a promoted model's first day)
    assert walk_with(counts, WATCHLIST, start, start + 3 * 60 * MINUTE, None) == []
    assert walk_with(counts, WATCHLIST, start, start + 3 * 60 * MINUTE, {}) == []


def test_an_entity_with_a_history_of_its_own_is_not_judged_against_the_stream() -> None:
    counts = quiet_night_then_surge()
    at = T0 + 7 * 60 * MINUTE + MINUTE
    obs = observe(CumulativeCounts(counts), at, WATCHLIST, {at.date(): (100, 90)})
    assert not obs.baseline.stream_prior and obs.baseline.history_volume == 264


@pytest.mark.parametrize(("burst", "fires"), [((5, 3), False), ((5, 5), True)])
def test_the_streams_history_weighs_a_burst_by_its_volume(burst: tuple[int, int], fires: bool) -> None:
    at = T0 + 9 * 60 * MINUTE
    obs = observe({at: burst}, at, WATCHLIST, {at.date(): (4_000, 1_000)})
    assert obs.baseline.stream_prior and obs.breach is fires


def test_prior_days_are_the_days_of_the_windows_starts() -> None:
    from services.alerter.detect import prior_days, prior_start

    first, last = T0 + 10 * MINUTE, T0 + DAY + 20 * MINUTE  # windows starting 23:56 and 00:06
    assert prior_days(first, last, WATCHLIST) == [(T0 - DAY).date(), T0.date(), (T0 + DAY).date()]
    assert prior_days(last, first, WATCHLIST) == []
    assert prior_start(T0.date(), WATCHLIST) == T0 - 7 * DAY


def walk_with(
    counts: Counts, cfg: DetectorConfig, first: datetime, last: datetime, prior: dict[Any, tuple[int, int]] | None
) -> list[tuple[str, datetime]]:
    cum, state, out = CumulativeCounts(counts), State(), []
    for t in minutes(first, last, 100_000):
        state, action = step(state, observe(cum, t, cfg, prior), cfg, f"a-{t:%d%H%M}")
        if action:
            out.append((action.kind, t))
    return out
