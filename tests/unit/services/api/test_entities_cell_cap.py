"""``GET /v1/entities`` answers at most MAX_SPARKLINE_CELLS sparkline buckets: 5,000
entities at ``points=1440`` were 58 MB built in memory, with no paging."""

from __future__ import annotations

import pytest

from services.api.errors import ApiError
from services.api.routes_entities import MAX_SPARKLINE_CELLS, check_cells


def test_the_review_case_is_refused_naming_the_most_points() -> None:
    with pytest.raises(ApiError) as raised:
        check_cells(5_000, 1_440)
    err = raised.value
    assert err.status_code == 422 and err.code == "validation_error"
    assert err.details == [{"loc": ["query", "points"], "max_points": MAX_SPARKLINE_CELLS // 5_001, "entities": 5_000}]
    assert "ask for at most 99 points (or use hour)" in err.message


@pytest.mark.parametrize(("entities", "points"), [(8_000, 60), (10_000, 48), (300, 1_440), (0, 1_440)])
def test_the_dashboard_and_small_watchlists_fit(entities: int, points: int) -> None:
    check_cells(entities, points)  # the dashboard asks for 60 minute or 48 hour points


def test_the_bound_is_inclusive() -> None:
    rows = 1_000
    check_cells(rows - 1, MAX_SPARKLINE_CELLS // rows)
    with pytest.raises(ApiError):
        check_cells(rows - 1, MAX_SPARKLINE_CELLS // rows + 1)
