from __future__ import annotations

import re

import pytest

from shared import entities
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
        ("John Lewis Partnerships are rare", ["JL", ALL]),  # longest alias fails the boundary
        ("JOHN LEWIS and waitrose", ["JL", ALL]),
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


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Acme\x00"},
        {"name": "Acme", "aliases": ("Acme\nCorp",)},
        {"name": "Acme", "tickers": ("AC\tM",)},
        {"name": "Acme", "case_sensitive_aliases": ("AC\x7f",)},
        {"name": "Acme", "group": "ind\x00"},
    ],
)
def test_control_characters_in_names_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"entity ACME: .* must not contain control characters"):
        WatchedEntity("ACME", **fields)  # type: ignore[arg-type]


WIDE = [
    BP,
    TESLA,
    JL,
    WatchedEntity("MS", "Marks & Spencer", aliases=("Marks & Spencer", "M&S", "Marks and Spencer", "Spencer")),
    WatchedEntity("LL", "Lloyds", aliases=("Lloyds", "Lloyds Banking Group", "Lloyd")),
    WatchedEntity(
        "AB", "A.B. Foods", aliases=("A.B. Foods", "AB Foods", "Associated British Foods"), tickers=("ABF.L",)
    ),
]
TEXTS = [
    "Marks & Spencer and M&S Food; Spencer alone",
    "XMarks & Spencer overlaps: Spencer still counts",
    "Lloyds Banking Groups, Lloyd's of London, Lloyds' results",
    "A.B. Foods up, AB Foodsy down, $ABF.L flat, associated british foods",
    "lloyds lloyd LLOYDS BANKING GROUP",
    "M&Sx M&S-run stores (Waitrose) [Tesla] 'BP'",
    "",
]


def _flat_alternation(words: object) -> str:
    assert isinstance(words, dict)
    return "|".join(re.escape(w) for w in sorted({w for w in words if w.strip()}, key=len, reverse=True))


def test_trie_pattern_matches_like_a_longest_first_alternation(monkeypatch: pytest.MonkeyPatch) -> None:
    trie = EntityMatcher(WIDE)
    monkeypatch.setattr(entities, "_alternation", _flat_alternation)
    flat = EntityMatcher(WIDE)
    for text in TEXTS:
        assert trie.tag(text) == flat.tag(text), text
    assert trie.tag(TEXTS[0]) == ["MS", ALL]
