from __future__ import annotations

import pytest

from shared.entities import ALL, EntityMatcher, WatchedEntity

BP = WatchedEntity("BP", "BP plc", aliases=("British Petroleum",), tickers=("BP",), case_sensitive_aliases=("BP",))
TESLA = WatchedEntity("TSLA", "Tesla", aliases=("Tesla",), tickers=("TSLA",))
JL = WatchedEntity("JL", "John Lewis", aliases=("John Lewis", "John Lewis Partnership", "Waitrose"))
M = EntityMatcher([BP, TESLA, JL])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BP profits fall", ["BP", ALL]),
        ("bp is lowercase here", [ALL]),
        ("British petroleum and Tesla", ["BP", "TSLA", ALL]),
        ("$tsla rallies while $BP slips", ["TSLA", "BP", ALL]),
        ("Teslas everywhere", [ALL]),
        ("BPX is another company", [ALL]),
        ("John Lewis Partnership closes stores", ["JL", ALL]),
        ("Waitrose and John Lewis", ["JL", ALL]),
        ("", [ALL]),
    ],
)
def test_tagging(text: str, expected: list[str]) -> None:
    assert M.tag(text) == expected


def test_invalid_keys_rejected() -> None:
    with pytest.raises(ValueError, match="invalid entity key"):
        WatchedEntity("_all", "reserved")
    with pytest.raises(ValueError, match="invalid entity key"):
        WatchedEntity("has space", "x")
