"""What an alert stores of the observation that fired it says why it crossed the line:
the rule's thresholds then, the baseline's method, and the spread the z-score used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from services.alerter.detect import MINUTE, DetectorConfig, observe
from services.alerter.evaluate import observation_json
from services.cli.alerts import describe

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _cfg(baseline: str) -> DetectorConfig:
    return DetectorConfig(
        window_s=300,
        min_volume=10,
        abs_threshold=0.5,
        z_threshold=3.0,
        baseline=baseline,  # type: ignore[arg-type]
        cooldown_s=1800,
        resolve_after_s=600,
        baseline_windows=6,
        min_baseline_windows=3,
        std_floor=0.05,
    )


def _spike() -> dict[datetime, tuple[int, int]]:
    """Half an hour at one negative in four (a flat baseline: spread 0), then a window at
    nine in ten."""
    counts = {T0 + i * MINUTE: (4, 1) for i in range(30)}
    counts |= {T0 + timedelta(minutes=30 + i): (10, 9) for i in range(5)}
    return counts


def test_the_thresholds_and_the_spread_used_are_stored() -> None:
    cfg = _cfg("ewma")
    obs = observe(_spike(), T0 + 34 * MINUTE, cfg)
    assert obs.breach and obs.baseline.std == 0.0
    got = observation_json(obs, cfg)
    assert got["min_volume"] == 10 and got["abs_threshold"] == 0.5 and got["z_threshold"] == 3.0
    assert got["baseline_method"] == "ewma"
    # z divided by the floor, not by the baseline's spread of 0: z = (0.9 - 0.25) / 0.05
    assert got["baseline_std"] == 0.0 and got["baseline_std_used"] == 0.05
    assert got["z"] == 13.0 == round((got["share"] - got["baseline_center"]) / got["baseline_std_used"], 3)


def test_a_median_baseline_says_so_and_keeps_baseline_mean() -> None:
    """Stored alerts and API clients read ``baseline_mean``: kept, the median under MAD."""
    cfg = _cfg("mad")
    obs = observe(_spike(), T0 + 34 * MINUTE, cfg)
    got = observation_json(obs, cfg)
    assert got["baseline_method"] == "mad"
    assert got["baseline_center"] == got["baseline_mean"] == 0.25
    assert {"share", "volume", "negatives", "baseline_std", "baseline_windows", "z", "window_start", "window_end"} <= (
        got.keys()
    )


def test_a_cold_start_says_it_was_judged_against_history() -> None:
    """Nothing in the baseline's windows, a day of history before them: the stored
    observation names the history (its volume and start), and the CLI says so."""
    cfg = DetectorConfig(
        window_s=300,
        min_volume=4,
        abs_threshold=0.5,
        z_threshold=1.5,
        baseline="ewma",
        cooldown_s=1800,
        resolve_after_s=600,
        baseline_windows=6,
        min_baseline_windows=3,
        history_s=86_400,
    )
    counts = {T0 - timedelta(hours=20) + i * 10 * MINUTE: (4, 1) for i in range(60)}  # 240, a quarter negative
    counts[T0 + 4 * MINUTE] = (6, 6)
    obs = observe(counts, T0 + 4 * MINUTE, cfg)
    assert obs.breach
    got = observation_json(obs, cfg)
    assert got["baseline_method"] == "history" and got["baseline_windows"] == 0
    assert got["history_volume"] == 240 and got["history_start"] == "2026-02-28T09:00:00+00:00"
    assert got["baseline_center"] == round(61 / 242, 4)
    # half a message off the share (continuity): z = (1 - 1/12 - centre) / spread used
    expected = (1 - 0.5 / 6 - 61 / 242) / got["baseline_std_used"]
    assert got["z"] == pytest.approx(expected, abs=0.01)
    line = describe(_alert(obs, got), "watch")[2]
    assert "over 240 messages since 2026-02-28 09:00 UTC (too few recent windows had data)" in line
    assert "over 0 windows" not in line


def test_show_gives_the_spread_the_z_score_used_and_when_the_alert_changed() -> None:
    """``alerts show`` printed the baseline's own spread (0.0%) beside a z divided by the floor
    (5.0%): "baseline 25.0% +/- 0.0%; z 13.0" cannot be worked out. A resolved alert did not say when."""
    cfg = _cfg("ewma")
    obs = observe(_spike(), T0 + 34 * MINUTE, cfg)
    got = observation_json(obs, cfg)
    alert = _alert(
        obs,
        got,
        status="resolved",
        acknowledged_at=obs.window_end + 2 * MINUTE,
        resolved_at=obs.window_end + 20 * MINUTE,
    )
    lines = describe(alert, "watch")
    assert "baseline 25.0% +/- 5.0% (the floor; its own 0.0%) over" in lines[2] and "z 13.0" in lines[2]
    assert ", acknowledged 2026-03-01 09:37:00 UTC, resolved 2026-03-01 09:55:00 UTC," in lines[1]


def test_show_works_back_the_spread_of_an_alert_stored_before_it_was_recorded() -> None:
    """Alerts stored before ``baseline_std_used`` was still printed "+/- 0.0%" beside z 6.0."""
    cfg = _cfg("ewma")
    obs = observe(_spike(), T0 + 34 * MINUTE, cfg)
    old = {"share": 0.7, "volume": 50, "negatives": 35, "baseline_mean": 0.1, "baseline_std": 0.0}
    old |= {"baseline_windows": 12, "z": 6.0}
    line = describe(_alert(obs, old), "watch")[2]
    assert "baseline 10.0% +/- 10.0% (the spread the z-score used; its own 0.0%) over 12 windows; z 6.0" in line
    same = old | {"baseline_std": 0.1}  # its own spread gave the z: nothing to add
    assert "baseline 10.0% +/- 10.0% over 12 windows; z 6.0" in describe(_alert(obs, same), "watch")[2]
    # near z 0 the rounded share and z give noise, not a spread: its own is shown
    near = old | {"share": 0.5001, "baseline_mean": 0.5, "baseline_std": 0.02, "z": 0.004}
    assert "baseline 50.0% +/- 2.0% over 12 windows" in describe(_alert(obs, near), "watch")[2]


def _alert(obs: Any, explanation: dict[str, Any], **changed: Any) -> SimpleNamespace:
    """An open alert fired on ``obs`` as ``describe`` reads it, with ``changed`` fields."""
    fields = {
        "id": "al-1",
        "status": "open",
        "severity": "critical",
        "rule_id": 1,
        "entity": "ACME",
        "stream": "news",
        "window_start": obs.window_start,
        "window_end": obs.window_end,
        "fired_at": obs.window_end,
        "model_version": "v1",
        "explanation": explanation,
    }
    return SimpleNamespace(**(fields | changed))
