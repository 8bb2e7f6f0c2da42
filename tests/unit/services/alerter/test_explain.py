"""Ranking of the terms that explain an alert (pure logic)."""

from __future__ import annotations

from collections import Counter

from services.alerter.explain import distinguishing_terms, drop_names, terms, words


def _texts(*parts: tuple[str, int]) -> list[str]:
    return [text for text, n in parts for _ in range(n)]


def test_a_topic_that_fills_the_window_ranks_above_words_seen_twice() -> None:
    base = terms(_texts(("coronavirus spreads to italy", 10), ("retail sales steady", 60), ("oil price flat", 30)))
    window = terms(
        _texts(
            ("coronavirus hits airlines", 30),
            ("chancellor unveils plan", 2),  # seen twice, never before: not the story
            ("oil price slumps", 8),
        )
    )
    ranked = [t["term"] for t in distinguishing_terms(window, base, 10)]
    # the plain log-odds ratio put coronavirus 7th, below "unveils", "plan" and "chancellor"
    assert ranked[0] == "coronavirus"
    assert ranked.index("slumps") < ranked.index("unveils")
    assert "oil" not in ranked and "price" not in ranked  # less common than before


def test_only_over_represented_terms_with_two_sightings() -> None:
    base = terms(_texts(("profits rise at tesco", 50)))
    window = terms(_texts(("profits rise at tesco", 5), ("fraud probe", 3), ("lonely", 1)))
    got = distinguishing_terms(window, base, 10)
    names = [t["term"] for t in got]
    assert sorted(names[:2]) == ["fraud", "probe"]
    assert "lonely" not in names  # seen once
    assert all(t["z"] > 0 for t in got) and "profits" not in names  # as common as before: no evidence
    assert got[0] == {"term": got[0]["term"], "window": 3, "baseline": 0, "z": got[0]["z"]}


def test_empty_inputs() -> None:
    assert distinguishing_terms(Counter(), Counter(), 5) == []
    assert distinguishing_terms(Counter({"only": 3}), Counter(), 5)[0]["term"] == "only"
    assert distinguishing_terms(Counter({"only": 3}), Counter({"only": 3}), 5) == []


def test_the_entitys_own_names_are_no_terms_unless_the_period_seldom_uses_them() -> None:
    """An alert on Virgin Atlantic listed "virgin" and "atlantic" (in every message of the window
    and the baseline) among why it fired; "banking" of Lloyds Banking Group may be the story."""
    routes = ("Lagos", "Delhi", "Boston", "Tokyo")
    base_texts = [f"Virgin Atlantic adds seasonal {r} route for summer travellers" for r in routes] * 5
    window_texts = [
        "Virgin Atlantic flights cancelled",
        "Virgin Atlantic cancelled again",
        "Virgin Atlantic strike",
        "Virgin Atlantic banking partner fails",
    ]
    window, base = terms(window_texts), terms(base_texts)
    names = set(words("Virgin Atlantic VIRGINATLANTIC"))
    drop_names(window, len(window_texts), base, len(base_texts), names | {"banking"})
    listed = [t["term"] for t in distinguishing_terms(window, base, 10)]
    assert "cancelled" in listed
    assert "virgin" not in listed and "atlantic" not in listed
    assert window["banking"] == 1  # a word of a name the period does not use: kept
    # no period to judge by: the window's own share decides
    window = terms(window_texts)
    drop_names(window, len(window_texts), Counter(), 0, names | {"strike"})
    assert "virgin" not in window and window["strike"] == 1
