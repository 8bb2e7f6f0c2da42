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
        ("Tesco\nBank fined", ["TB"]),
        ("Tesco\r\n Bank fined", ["TB"]),
        ("Tesco\t\u3000Bank fined", ["TB"]),
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
    assert MATCHER.tag("$TSLA then Tesco\n\n\nBank and Straße McDonald\u2019s") == ["TSLA", "TB", "MCD", ALL]
    assert MATCHER.tag("Straße " * 3 + "McDonald\u2019s  " * 2 + "$TSLA") == ["MCD", "TSLA", ALL]


def test_normalize_folds_typography_and_whitespace() -> None:
    assert normalize("Rolls\u2011Royce\u2019s  new\n\tengine") == "Rolls-Royce's new engine"
    assert normalize("plain ascii") == "plain ascii"
