"""Time windows of the read endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.api.errors import ApiError
from services.api.query import MAX_POINTS, check_order, make_window

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


@pytest.mark.parametrize("granularity", ["minute", "hour"])
def test_from_after_the_latest_data_is_an_empty_window(granularity: str) -> None:
    later = T + timedelta(days=2, minutes=7)
    w = make_window(later, None, granularity, default_points=10, anchor=T)  # type: ignore[arg-type]
    step = timedelta(minutes=1) if granularity == "minute" else timedelta(hours=1)
    assert w.end - w.start == step and w.start <= later < w.end and len(w.buckets()) == 1


@pytest.mark.parametrize(
    ("granularity", "last"),
    [("minute", datetime(2026, 5, 1, 10, 0, tzinfo=UTC)), ("hour", datetime(2026, 5, 1, 10, tzinfo=UTC))],
)
def test_to_between_boundaries_gives_exactly_points_buckets(granularity: str, last: datetime) -> None:
    to = datetime(2026, 5, 1, 10, 0, 30, tzinfo=UTC)
    w = make_window(None, to, granularity, default_points=120, anchor=None)  # type: ignore[arg-type]
    assert len(w.buckets()) == 120 and w.buckets()[-1] == last  # the bucket ``to`` falls in is the last
    on_boundary = make_window(None, last, granularity, default_points=120, anchor=None)  # type: ignore[arg-type]
    assert len(on_boundary.buckets()) == 120 and on_boundary.buckets()[-1] == last - on_boundary.step


@pytest.mark.parametrize(
    ("start", "end", "granularity"),
    [
        (T.replace(second=0), T.replace(second=0), "minute"),
        (T, T - timedelta(minutes=5), "minute"),
        (T - timedelta(minutes=MAX_POINTS + 2), T, "minute"),
        # from after to inside one bucket: rounding made it a one-hour window
        (datetime(2024, 1, 1, 10, 50, tzinfo=UTC), datetime(2024, 1, 1, 10, 10, tzinfo=UTC), "hour"),
    ],
)
def test_bad_windows_are_422(start: datetime, end: datetime, granularity: str) -> None:
    with pytest.raises(ApiError) as info:
        make_window(start, end, granularity, default_points=10, anchor=None)  # type: ignore[arg-type]
    assert info.value.status_code == 422 and info.value.code == "validation_error"


def test_check_order_refuses_from_not_before_to_and_allows_open_bounds() -> None:
    for start, end in ((T, T), (T, T - timedelta(seconds=1))):
        with pytest.raises(ApiError) as info:
            check_order(start, end)
        assert info.value.status_code == 422
    check_order(T - timedelta(seconds=1), T)
    check_order(None, T)
    check_order(T, None)


def test_an_overlap_filter_takes_from_equal_to_to() -> None:
    check_order(T, T, equal_ok=True)  # alerts whose window holds T
    with pytest.raises(ApiError):
        check_order(T, T - timedelta(seconds=1), equal_ok=True)
