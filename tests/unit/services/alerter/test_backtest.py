"""The backtest's range: in order, at most 92 days, inside the calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.alerter.backtest import MAX_SPAN, RangeRefused, check_range

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_a_range_in_order_within_the_span_is_returned_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    start, end = check_range(T0.astimezone(paris), (T0 + MAX_SPAN).astimezone(paris))
    assert (start, end) == (T0, T0 + MAX_SPAN) and start.tzinfo is UTC
    assert check_range(T0, T0) == (T0, T0)  # one minute


def test_an_end_before_the_start_is_refused() -> None:
    with pytest.raises(RangeRefused, match="is before the start"):
        check_range(T0, T0 - timedelta(minutes=1))


def test_a_span_over_92_days_is_refused() -> None:
    """Each key is walked minute by minute: ``--to 9999-12-31`` ran for ever."""
    assert MAX_SPAN == timedelta(days=92)
    for end in (T0 + MAX_SPAN + timedelta(minutes=1), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)):
        with pytest.raises(RangeRefused, match="longer than a backtest may cover \\(92 days\\)"):
            check_range(T0, end)
    with pytest.raises(RangeRefused, match="92 days"):
        check_range(datetime(1, 1, 1, tzinfo=UTC), T0)


def test_the_calendars_ends_are_refused_not_overflowed() -> None:
    """``--from 0001-01-01`` raised a raw OverflowError when the baseline history was
    counted back from it; an end in the last minute of 9999 overflowed the walk."""
    year_one = datetime(1, 1, 1, tzinfo=UTC)
    with pytest.raises(RangeRefused, match="too near the calendar's ends"):
        check_range(year_one, year_one + timedelta(days=1), timedelta(hours=1))
    assert check_range(year_one + timedelta(hours=1), year_one + timedelta(days=1), timedelta(hours=1))
    last = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    with pytest.raises(RangeRefused, match="too near the calendar's ends"):
        check_range(last - timedelta(days=1), last)
    with pytest.raises(RangeRefused, match="outside years 1 to 9999 in UTC"):
        check_range(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=2))), T0)
