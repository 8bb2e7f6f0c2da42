"""The alerter's settings refuse combinations under which no rule could ever fire."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.alerter.config import AlerterSettings


def test_a_warm_up_longer_than_the_baseline_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule fires only once its baseline holds TW_ALERTER_MIN_BASELINE_WINDOWS windows
    with data, and the baseline holds at most TW_ALERTER_BASELINE_WINDOWS: asking for more
    silenced every rule for good. Before, the settings accepted it."""
    monkeypatch.setenv("TW_ALERTER_BASELINE_WINDOWS", "4")
    monkeypatch.setenv("TW_ALERTER_MIN_BASELINE_WINDOWS", "5")
    with pytest.raises(ValidationError) as refused:
        AlerterSettings()
    message = str(refused.value)
    assert "TW_ALERTER_MIN_BASELINE_WINDOWS (5) is larger than TW_ALERTER_BASELINE_WINDOWS (4)" in message
    assert "no rule could ever fire" in message


def test_a_warm_up_as_long_as_the_baseline_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_ALERTER_BASELINE_WINDOWS", "4")
    monkeypatch.setenv("TW_ALERTER_MIN_BASELINE_WINDOWS", "4")
    settings = AlerterSettings()
    assert (settings.baseline_windows, settings.min_baseline_windows) == (4, 4)
    assert AlerterSettings(baseline_windows=2, min_baseline_windows=1).min_baseline_windows == 1
