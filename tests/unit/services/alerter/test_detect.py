from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.alerter.detect import MINUTE, CumulativeCounts, DetectorConfig, State, minutes, observe, skipped, step

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CFG = DetectorConfig(
    window_s=300,
    min_volume=10,
    abs_threshold=0.5,
    z_threshold=2.0,
    baseline="ewma",
    cooldown_s=1800,
    resolve_after_s=600,
    baseline_windows=6,
    min_baseline_windows=3,
)


def steady(n_minutes: int, per_minute: int = 4, neg: int = 1) -> dict[datetime, tuple[int, int]]:
    return {T0 + i * MINUTE: (per_minute, neg) for i in range(n_minutes)}


def run(counts: dict[datetime, tuple[int, int]], cfg: DetectorConfig = CFG) -> list[tuple[str, datetime]]:
    state, out = State(), []
    end = max(counts)
    for t in minutes(min(counts), end, 10_000):
        obs = observe(counts, t, cfg)
        state, action = step(state, obs, cfg, f"a-{t.isoformat()}")
        if action:
            out.append((action.kind, t))
    return out


def test_steady_stream_fires_nothing() -> None:
    assert run(steady(120)) == []


def test_spike_fires_exactly_once_then_resolves_after_hysteresis() -> None:
    counts = steady(60)
    for i in range(60, 65):
        counts[T0 + i * MINUTE] = (6, 5)  # negative spike
    for i in range(65, 100):
        counts[T0 + i * MINUTE] = (4, 1)
    actions = run(counts)
    assert [a for a, _ in actions] == ["fire", "resolve"]
    fired_at, resolved_at = actions[0][1], actions[1][1]
    assert T0 + 60 * MINUTE <= fired_at <= T0 + 64 * MINUTE
    # the condition clears when the spike leaves the 5-minute window; resolution waits 10 more minutes
    assert resolved_at - fired_at >= timedelta(seconds=CFG.resolve_after_s)


def test_below_minimum_volume_nothing_fires() -> None:
    counts = {T0 + i * MINUTE: (1, 0) for i in range(60)}
    for i in range(60, 65):
        counts[T0 + i * MINUTE] = (1, 1)  # 100% negative, but only 5 per window < 10
    assert run(counts) == []


def test_cooldown_blocks_a_second_spike_and_allows_one_after() -> None:
    counts = steady(60)
    spikes = [(60, 65), (80, 85), (200, 205)]
    for i in range(65, 260):
        counts[T0 + i * MINUTE] = (4, 1)
    for a, b in spikes:
        for i in range(a, b):
            counts[T0 + i * MINUTE] = (6, 5)
    fires = [t for kind, t in run(counts) if kind == "fire"]
    assert len(fires) == 2  # the one at 80 falls inside the 30 min cooldown
    assert fires[1] >= T0 + 200 * MINUTE


def test_warm_up_without_baseline_does_not_fire() -> None:
    counts = {T0 + i * MINUTE: (6, 5) for i in range(8)}
    assert run(counts) == []


@pytest.mark.parametrize("method", ["ewma", "mad"])
def test_z_score_uses_baseline(method: str) -> None:
    cfg = DetectorConfig(**{**CFG.__dict__, "baseline": method})
    counts = steady(60)
    obs = observe(counts, T0 + 59 * MINUTE, cfg)
    assert obs.baseline.windows == 6
    assert obs.baseline.mean == pytest.approx(0.25)
    assert obs.z == pytest.approx(0.0)
    assert not obs.breach


def test_minutes_cap() -> None:
    got = list(minutes(T0, T0 + 10 * MINUTE, 3))
    assert got == [T0 + 8 * MINUTE, T0 + 9 * MINUTE, T0 + 10 * MINUTE]


def test_skipped_names_the_minutes_the_cap_leaves_out() -> None:
    """The live walk warns with this range (TW_ALERTER_MAX_STEPS): before, the oldest
    minutes were dropped without a word."""
    assert skipped(T0, T0 + 10 * MINUTE, 3) == (T0, T0 + 7 * MINUTE)
    left = [t for t in (T0 + i * MINUTE for i in range(11)) if t not in set(minutes(T0, T0 + 10 * MINUTE, 3))]
    assert (left[0], left[-1]) == skipped(T0, T0 + 10 * MINUTE, 3)
    assert skipped(T0, T0 + 10 * MINUTE, 11) is None
    assert skipped(T0, T0 + 10 * MINUTE, 1_440) is None


def _random_counts(seed: int) -> dict[datetime, tuple[int, int]]:
    rng = random.Random(seed)
    base = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    out = {}
    for i in range(0, 3_000):
        if rng.random() < 0.6:  # gaps: minutes without data
            c = rng.randint(1, 9)
            out[base + i * MINUTE] = (c, rng.randint(0, c))
    return out


@pytest.mark.parametrize("window_s", [60, 120, 900, 3600, 86_400])
@pytest.mark.parametrize("baseline", ["ewma", "mad"])
def test_running_totals_observe_exactly_what_plain_counts_do(window_s: int, baseline: str) -> None:
    plain = _random_counts(window_s)
    cumulative = CumulativeCounts(plain)
    cfg = DetectorConfig(
        window_s=window_s,
        min_volume=5,
        abs_threshold=0.3,
        z_threshold=1.0,
        baseline=baseline,  # type: ignore[arg-type]
        cooldown_s=600,
        resolve_after_s=300,
        baseline_windows=6,
    )
    first = min(plain)
    # inside the data, at its edges and past them on both sides
    for k in (-5, 0, 1, 59, 700, 1_499, 2_999, 3_000, 3_100):
        at = first + k * MINUTE
        assert observe(cumulative, at, cfg) == observe(plain, at, cfg), k
    assert dict(cumulative) == plain and len(cumulative) == len(plain)


def test_running_totals_of_nothing_are_zero() -> None:
    empty = CumulativeCounts({})
    assert empty.window(datetime(2026, 1, 1, tzinfo=UTC), 60) == (0, 0)
