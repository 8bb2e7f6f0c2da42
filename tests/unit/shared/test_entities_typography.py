"""Aliases with an apostrophe, a hyphen or a space, and cashtags, in the typographic forms of
news copy: all went untagged."""

from __future__ import annotations

import pytest

from shared.entities import ALL, EntityMatcher, WatchedEntity, normalize

MATCHER = EntityMatcher(
    [
        WatchedEntity("MCD", "McDonald's", aliases=("McDonald's",)),
        WatchedEntity("SBRY", "Sainsbury's", aliases=("Sainsbury’s",)),  # the alias typed typographically
        WatchedEntity("RR", "Rolls-Royce", aliases=("Rolls-Royce",)),
        WatchedEntity("TB", "Tesco Bank", aliases=("Tesco Bank",)),
        WatchedEntity("BP", "BP", case_sensitive_aliases=("BP Castrol",)),
        WatchedEntity("TSLA", "Tesla", aliases=("Tesla",), tickers=("TSLA",)),
    ]
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("McDonald\u2019s profits fall", ["MCD"]),  # right single quotation mark
        ("McDonald\u2018s", ["MCD"]),
        ("McDonald\u02bcs", ["MCD"]),  # modifier letter apostrophe (a letter: no boundary before)
        ("McDonald\u2032s", ["MCD"]),  # prime
        ("MCDONALD\u2019S", ["MCD"]),
        ("Sainsbury\u2019s cuts jobs", ["SBRY"]),
        ("Sainsbury's cuts jobs", ["SBRY"]),
        ("Rolls\u2011Royce engines", ["RR"]),  # non-breaking hyphen
        ("Rolls\u2010Royce engines", ["RR"]),  # hyphen
        ("Rolls\u2012Royce engines", ["RR"]),  # figure dash
        ("Rolls\u2013Royce engines", ["RR"]),  # en dash: a compound name in some house styles
        ("Rolls\u2212Royce engines", ["RR"]),  # minus sign
        ("Tesco  Bank fined", ["TB"]),
        ("Tesco\u3000Bank fined", ["TB"]),  # NFKC: a plain space
        ("Tesco \u00a0\u2009Bank fined", ["TB"]),
        ("BP\u00a0 Castrol", ["BP"]),  # case-sensitive aliases too
        ("$TSLA股价大跌", ["TSLA"]),  # a cashtag ends at an unspaced script, as an alias does
        ("＄ＴＳＬＡ股价", ["TSLA"]),
        ("$TSLA가 급락", ["TSLA"]),
    ],
)
def test_typographic_apostrophes_hyphens_and_spaces_match(text: str, expected: list[str]) -> None:
    assert MATCHER.tag(text) == [*expected, ALL]


@pytest.mark.parametrize(
    "text",
    [
        "Rolls\u2014Royce",  # an em dash sets a clause off
        "Tesco. Bank fined",
        "$TSLAX股价",  # another ticker
        "$tsla_ rally",
        "McDonalds",
    ],
)
def test_other_spellings_still_do_not_match(text: str) -> None:
    assert MATCHER.tag(text) == [ALL]


def test_order_of_first_mention_holds_after_whitespace_is_collapsed() -> None:
    # collapsing shortens the text: first mentions are compared in the same (collapsed) text,
    # the folded aliases' and the cashtags' alike
    assert MATCHER.tag("Tesco" + " " * 50 + "Bank then $TSLA") == ["TB", "TSLA", ALL]
    assert MATCHER.tag("$TSLA then Tesco \u3000\u00a0Bank and Straße McDonald\u2019s") == ["TSLA", "TB", "MCD", ALL]
    assert MATCHER.tag("Straße " * 3 + "McDonald\u2019s  " * 2 + "$TSLA") == ["MCD", "TSLA", ALL]


def test_normalize_folds_typography_and_spaces_but_keeps_tabs_and_line_breaks() -> None:
    assert normalize("Rolls\u2011Royce\u2019s  new\u3000 engine ") == "Rolls-Royce's new engine"
    assert normalize("Rolls\u2011Royce\u2019s  new\n\tengine") == "Rolls-Royce's new\n\tengine"
    assert normalize("plain ascii") == "plain ascii"


BOUNDARY_MATCHER = EntityMatcher(
    [
        WatchedEntity("tesco", "Tesco", aliases=("Tesco",)),
        WatchedEntity("tesco-bank", "Tesco Bank", aliases=("Tesco Bank",)),
        WatchedEntity("boe", "Bank of England", aliases=("Bank of England",)),
    ]
)


@pytest.mark.parametrize(
    "text",
    [
        "Retail sales rose at Tesco\nBank of England holds rates",
        "Markets wrap: Tesco\n\nBank of England leaves rates unchanged",
        "Retail sales rose at Tesco\r\nBank of England holds rates",
        "Top risers\tTesco\tBank of England",
        "Retail sales rose at Tesco \n Bank of England holds rates",
    ],
)
def test_an_alias_never_spans_a_line_break_or_a_tab(text: str) -> None:
    # a line ends a headline's phrase and a tab a table's cell: two entities, not "Tesco Bank"
    assert BOUNDARY_MATCHER.tag(text) == ["tesco", "boe", ALL]


@pytest.mark.parametrize("text", ["Tesco\nBank fined", "Tesco\r\n Bank fined", "Tesco\t\u3000Bank fined"])
def test_tesco_bank_split_by_a_line_break_or_a_tab_is_not_tesco_bank(text: str) -> None:
    assert MATCHER.tag(text) == [ALL]
