"""Retention settings that cannot run are refused at start (an infinite or 1e6-day
retention made every retention run raise OverflowError), an empty consumer group is
refused (it failed at start with a traceback), and each retention step runs whatever the
others do: a failing first step once kept the alert texts from being stripped and the
trend buckets from expiring."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.aggregator import app
from services.aggregator.config import MAX_RETENTION_DAYS, AggregatorSettings

SCORED = "TW_AGGREGATOR_SCORED_RETENTION_DAYS"
LEDGER = "TW_AGGREGATOR_LEDGER_RETENTION_DAYS"
TREND = "TW_AGGREGATOR_TREND_RETENTION_DAYS"


@pytest.mark.parametrize("var", [SCORED, LEDGER, TREND])
@pytest.mark.parametrize("value", ["inf", "nan", "1e6", str(MAX_RETENTION_DAYS + 1)])
def test_a_retention_that_cannot_run_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    for name, days in ({SCORED: "7", LEDGER: "30", TREND: "0"} | {var: value}).items():
        monkeypatch.setenv(name, days)
    with pytest.raises(ValidationError, match=var):
        AggregatorSettings()


def test_the_longest_retention_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (SCORED, LEDGER, TREND):
        monkeypatch.setenv(name, str(MAX_RETENTION_DAYS))
    settings = AggregatorSettings()
    assert settings.scored_retention_days == settings.ledger_retention_days == MAX_RETENTION_DAYS
    assert settings.trend_retention_days == MAX_RETENTION_DAYS


def test_an_empty_group_id_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_AGGREGATOR_GROUP_ID", "")
    with pytest.raises(ValidationError, match="TW_AGGREGATOR_GROUP_ID"):
        AggregatorSettings()


@pytest.mark.parametrize("failing", ["expire", "strip_alert_texts", "expire_trends"])
async def test_each_retention_step_runs_when_another_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, failing: str
) -> None:
    ran: list[str] = []

    async def expire(sessions: Any, *, scored_days: float, ledger_days: float) -> tuple[int, int]:
        ran.append("expire")
        return 1, 2

    async def strip_alert_texts(sessions: Any, *, cutoff: datetime) -> int:
        ran.append("strip_alert_texts")
        return 3

    async def expire_trends(sessions: Any, *, days: float) -> dict[str, int]:
        ran.append("expire_trends")
        return {"trend_minute": 4, "trend_hour": 0}

    fakes = {"expire": expire, "strip_alert_texts": strip_alert_texts, "expire_trends": expire_trends}

    async def broken(*args: Any, **kwargs: Any) -> Any:
        ran.append(failing)
        raise OverflowError("date value out of range")

    fakes[failing] = broken
    for name, fake in fakes.items():
        monkeypatch.setattr(app, name, fake)
    with caplog.at_level(logging.INFO, logger="tonewatch.aggregator"):
        await app.retention_run(object(), AggregatorSettings(), app.TooOldLog())  # type: ignore[arg-type]
    assert ran == ["expire", "strip_alert_texts", "expire_trends"]
    assert "failed: date value out of range" in caplog.text
    assert "retention: deleted" in caplog.text  # what the other steps did is still logged
