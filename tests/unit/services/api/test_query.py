"""Time windows of the read endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.api.errors import ApiError
from services.api.query import MAX_POINTS, make_window

T = datetime(2026, 5, 1, 12, 34, 56, tzinfo=UTC)


def test_default_window_ends_after_the_anchor_bucket() -> None:
    w = make_window(None, None, "minute", default_points=10, anchor=T)
    assert w.end == datetime(2026, 5, 1, 12, 35, tzinfo=UTC)
    assert w.start == datetime(2026, 5, 1, 12, 25, tzinfo=UTC)
    assert len(w.buckets()) == 10 and w.buckets()[-1] == datetime(2026, 5, 1, 12, 34, tzinfo=UTC)


def test_hour_windows_and_naive_times_as_utc() -> None:
    w = make_window(datetime(2026, 5, 1, 3, 30), None, "hour", default_points=5, anchor=T)
    assert w.start == datetime(2026, 5, 1, 3, tzinfo=UTC) and w.end == datetime(2026, 5, 1, 13, tzinfo=UTC)
    assert len(w.buckets()) == 10


def test_no_anchor_uses_now() -> None:
    w = make_window(None, None, "minute", default_points=3, anchor=None)
    assert abs((w.end - datetime.now(UTC)).total_seconds()) < 120


@pytest.mark.parametrize(
    ("start", "end", "granularity"),
    [
        (T.replace(second=0), T.replace(second=0), "minute"),
        (T, T - timedelta(minutes=5), "minute"),
        (T - timedelta(minutes=MAX_POINTS + 2), T, "minute"),
    ],
)
def test_bad_windows_are_422(start: datetime, end: datetime, granularity: str) -> None:
    with pytest.raises(ApiError) as info:
        make_window(start, end, granularity, default_points=10, anchor=None)  # type: ignore[arg-type]
    assert info.value.status_code == 422 and info.value.code == "validation_error"
