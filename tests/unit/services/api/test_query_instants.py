"""Time query parameters: a UTC offset whose ``+`` a query string decoded as a space."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from services.api.query import Instant

INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)


@pytest.mark.parametrize(
    ("given", "utc"),
    [
        ("2031-07-08T11:00:00 02:00", datetime(2031, 7, 8, 9, 0, tzinfo=UTC)),
        ("2031-07-08T11:00 0200", datetime(2031, 7, 8, 9, 0, tzinfo=UTC)),
        ("2031-07-08 11:00:00.25 05:30", datetime(2031, 7, 8, 5, 30, 0, 250000, tzinfo=UTC)),
        ("2031-07-08T11:00:00+02:00", datetime(2031, 7, 8, 9, 0, tzinfo=UTC)),  # encoded: unchanged
        ("2031-07-08T11:00:00-02:00", datetime(2031, 7, 8, 13, 0, tzinfo=UTC)),
        ("2031-07-08 11:00", datetime(2031, 7, 8, 11, 0, tzinfo=UTC)),  # naive: UTC
    ],
)
def test_an_offset_after_a_space_is_a_plus_offset(given: str, utc: datetime) -> None:
    assert INSTANT.validate_python(given) == utc


@pytest.mark.parametrize(
    "given", ["2031-07-08T11:00:00 ", "2031-07-08T11:00:00 2", "2031-07-08T11:00:00 2:00", "tomorrow 02:00"]
)
def test_other_spaces_are_still_refused(given: str) -> None:
    with pytest.raises(ValidationError):
        INSTANT.validate_python(given)
