"""TW_AGGREGATOR_TREND_RETENTION_DAYS: 0 (the default) keeps the trend buckets forever;
otherwise it must cover how far back the alerter reads them, which the alerter's own
definitions give (a 7-day rule's baseline reaches 91 days back, not 7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import annotated_types
import pytest
from pydantic import ValidationError

from services.aggregator.config import MIN_TREND_RETENTION_DAYS, AggregatorSettings
from services.alerter.config import AlerterSettings
from services.alerter.detect import DetectorConfig, spans
from services.alerter.rules import RuleSpec

VAR = "TW_AGGREGATOR_TREND_RETENTION_DAYS"


def _bound(model: type[AlerterSettings] | type[RuleSpec], field: str) -> int:
    """The field's upper bound (``le``)."""
    return next(int(m.le) for m in model.model_fields[field].metadata if isinstance(m, annotated_types.Le))


def test_the_default_keeps_trend_buckets_forever() -> None:
    assert AggregatorSettings().trend_retention_days == 0
    assert AggregatorSettings(**{VAR: "0"}).trend_retention_days == 0


@pytest.mark.parametrize("days", [MIN_TREND_RETENTION_DAYS, 93.5, 365, 3650])
def test_a_retention_covering_the_baselines_is_accepted(days: float) -> None:
    assert AggregatorSettings(**{VAR: str(days)}).trend_retention_days == days


@pytest.mark.parametrize("days", [0.5, 1, 7, 8, 30, 92.99])
def test_a_shorter_retention_is_refused_naming_the_variable(days: float) -> None:
    with pytest.raises(ValidationError) as info:
        AggregatorSettings(**{VAR: str(days)})
    message = str(info.value)
    assert f"{VAR} ({days:g}) is shorter than {MIN_TREND_RETENTION_DAYS} days" in message
    assert "set it to 0 (keep trend buckets forever) or at least 93" in message


@pytest.mark.parametrize("value", ["-1", "inf", "nan", "forever"])
def test_a_value_that_is_no_number_of_days_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match=VAR):
        AggregatorSettings(**{VAR: value})


def test_the_minimum_covers_the_oldest_bucket_the_alerter_reads() -> None:
    """Worst case from the alerter's definitions: the longest rule window, the default
    baseline windows and evaluation walk, the largest allowed lateness. The minutes and
    hours :func:`detect.spans` has ``store.load_windows`` read start within the minimum
    before the stream's newest minute, and not within 8 days."""
    window_s = _bound(RuleSpec, "window_s")
    baseline_windows = AlerterSettings.model_fields["baseline_windows"].default
    max_steps = AlerterSettings.model_fields["max_steps"].default
    lateness = timedelta(seconds=_bound(AlerterSettings, "allowed_lateness_s"))
    assert (window_s, baseline_windows, max_steps, lateness) == (7 * 86_400, 12, 1_440, timedelta(days=1))

    cfg = DetectorConfig(
        window_s=window_s,
        min_volume=1,
        abs_threshold=0.5,
        z_threshold=1.0,
        baseline="ewma",
        cooldown_s=0,
        resolve_after_s=0,
        baseline_windows=baseline_windows,
    )
    newest = datetime(2026, 3, 1, 12, 34, tzinfo=UTC)
    latest = newest - lateness  # evaluate(): min(latest, now) - allowed lateness
    first = latest - (max_steps - 1) * timedelta(minutes=1)  # at most max_steps minutes evaluated
    minute_spans, hour_spans = spans(first, latest, cfg)
    oldest = min(lo for lo, _ in minute_spans + hour_spans)
    reach = newest - oldest
    assert timedelta(days=MIN_TREND_RETENTION_DAYS - 1) < reach <= timedelta(days=MIN_TREND_RETENTION_DAYS)
    assert reach > timedelta(days=8)
