"""An alert's terms and examples: words in any script, no redaction placeholders, ties
in a stable order, one example per syndicated headline (pure logic)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from services.alerter.explain import distinguishing_terms, examples, same_text, terms


def test_redaction_placeholders_are_no_terms() -> None:
    """Before: "phone", "email" and "card" were top terms of a window quoting a hotline."""
    got = terms(["Call [PHONE] or mail [EMAIL] re card [CARD]", "Refund to [IBAN], hotline[PHONE]now"])
    assert got == Counter({"call": 1, "mail": 1, "card": 1, "refund": 1, "hotline": 1, "now": 1})


def test_words_with_letters_beyond_ascii_are_whole() -> None:
    """Before: "bernahme" and "rzt" from German, nothing from Cyrillic or Hindi."""
    got = terms(["Übernahme gescheitert: Aktie stürzt ab", "Шок на рынке", "हिन्दी समाचार"])
    assert set(got) == {"übernahme", "gescheitert", "aktie", "stürzt", "шок", "рынке", "हिन्दी", "समाचार"}


def test_text_without_spaces_gives_its_runs() -> None:
    assert set(terms(["株価が急落、東証一部"])) == {"株価が急落", "東証一部"}


def test_digits_and_edges_are_not_part_of_a_term() -> None:
    """Before: "covid-" from "COVID-19", and "acme" for "ACME’s" (a typographic apostrophe)."""
    got = terms(["COVID-19 cases rise", "ACME’s x-ray unit", "ACME's co-op", "well- known -ish"])
    assert set(got) == {"covid", "cases", "rise", "acme's", "x-ray", "unit", "co-op", "well", "known", "ish"}
    assert got["acme's"] == 2


def test_english_terms_and_stopwords_as_before() -> None:
    got = terms(["The CEO says it's over: fraud probe widens at Tesco, don't panic"])
    assert set(got) == {"ceo", "fraud", "probe", "widens", "tesco", "don't", "panic"}


def test_equal_z_terms_are_listed_by_mentions_then_alphabetically() -> None:
    """Before: equal-z terms came in reverse alphabetical order (charlie, bravo, alpha)."""
    window = Counter({"charlie": 3, "alpha": 3, "bravo": 3, "delta": 5})
    got = [t["term"] for t in distinguishing_terms(window, Counter(), 10)]
    assert got == ["delta", "alpha", "bravo", "charlie"]


@dataclass
class Row:
    id: str
    text: str
    negative_prob: float = 0.9


def _ids(rows: list[Row], n: int) -> list[str]:
    return [r.id for r in examples(rows, n, lambda r: r.text, lambda r: r.negative_prob)]


def test_syndicated_copies_take_one_example_slot() -> None:
    """The rows come most negative first; before, the copies of one headline took every
    slot."""
    rows = [
        Row("a1", "ACME plunges as CEO quits", 0.97),
        Row("a2", "ACME plunges as CEO quits!", 0.97),
        Row("a3", "  acme PLUNGES as ceo quits ", 0.96),
        Row("a4", "ACME plunges as CEO quits", 0.95),
        Row("b1", "Regulator probes ACME", 0.9),
        Row("c1", "ACME bonds slide", 0.8),
    ]
    assert _ids(rows, 3) == ["a1", "b1", "c1"]
    assert _ids(rows, 4) == ["a1", "b1", "c1", "a2"]  # the slots the texts leave: further copies


def test_a_copy_goes_before_a_much_less_negative_text() -> None:
    """A mild negative is no example of the surge: a copy of a text more negative by more
    than COPY_LEAD keeps its place before it."""
    rows = [Row("a1", "fraud probe", 0.9), Row("a2", "fraud probe", 0.9), Row("b1", "slips in quiet trading", 0.6)]
    assert _ids(rows, 2) == ["a1", "a2"]
    rows[2].negative_prob = 0.7  # exactly COPY_LEAD less negative: the text first
    assert _ids(rows, 2) == ["a1", "b1"]
    assert _ids(rows, 9) == ["a1", "b1", "a2"]
    assert _ids(rows, 0) == []


def test_same_text_ignores_case_spacing_punctuation_and_width() -> None:
    assert same_text("ＡＣＭＥ  shares: down!") == same_text("acme shares down") == "acme shares down"
    assert same_text("ACME shares down") != same_text("ACME shares up")


def test_texts_without_words_are_no_copies_of_each_other() -> None:
    """Review finding: emoji-only and punctuation-only texts all keyed "" and took each
    other for copies, so a headline less negative by 0.2 went before them."""
    rows = [("😡😡😡", 0.97), ("💀", 0.96), ("!!!", 0.95), ("ACME shares fall", 0.80)]
    picked = examples(rows, 3, lambda r: r[0], lambda r: r[1])
    assert [text for text, _ in picked] == ["😡😡😡", "💀", "!!!"]
    assert same_text("😡 😡") == same_text("😡  😡") != same_text("💀")
