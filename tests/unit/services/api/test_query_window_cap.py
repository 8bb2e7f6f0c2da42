"""The window-too-long 422 suggests hour buckets only when the window is of minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.api.errors import ApiError
from services.api.query import MAX_POINTS, make_window

END = datetime(2031, 1, 1, tzinfo=UTC)


def test_too_many_minutes_suggests_hour() -> None:
    with pytest.raises(ApiError) as caught:
        make_window(END - timedelta(minutes=MAX_POINTS + 1), END, "minute", default_points=60, anchor=None)
    assert caught.value.status_code == 422 and caught.value.message.endswith("narrow it or use hour")


def test_too_many_hours_does_not_suggest_hour() -> None:
    with pytest.raises(ApiError) as caught:
        make_window(END - timedelta(hours=MAX_POINTS + 1), END, "hour", default_points=60, anchor=None)
    assert caught.value.status_code == 422 and "hour buckets; narrow it" in caught.value.message
    assert "use hour" not in caught.value.message
