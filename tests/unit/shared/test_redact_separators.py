"""Numbers grouped by an ideographic space, a tab or (cards only) line breaks, and dotted
numbers after an abbreviation's dot: all were stored unredacted."""

from __future__ import annotations

import pytest

from shared.redact import id_holds_personal_data, redact


def _both(text: str) -> tuple[str, str]:
    return redact(text), redact(text, keep_ipv4=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the ideographic space of Japanese and Chinese text, full-width digits or ASCII
        ("カード番号は４１１１\u3000１１１１\u3000１１１１\u3000１１１１です", "カード番号は[CARD]です"),
        ("card 4111\u30001111\u30001111\u30001111", "card [CARD]"),
        ("電話は０９０\u3000１２３４\u3000５６７８まで", "電話は[PHONE]まで"),
        ("tel: 415\u3000555\u30002671", "tel: [PHONE]"),
        # a tab (pasted from a spreadsheet's cells)
        ("card 4111\t1111\t1111\t1111 exp 12/26", "card [CARD] exp 12/26"),
        ("4111\t1111\t1111\t1111", "[CARD]"),
        ("call me on 415\t555\t2671", "call me on [PHONE]"),
        ("phone 020\t7946\t0958", "phone [PHONE]"),
        # a card split over lines, LF or CR-LF
        ("card 4111\r\n1111\r\n1111\r\n1111", "card [CARD]"),
        ("my card is\n4111\n1111\n1111\n1111", "my card is\n[CARD]"),
        ("see below\r\n4111\r\n1111\r\n1111\r\n1111\r\nthanks", "see below\r\n[CARD]\r\nthanks"),
        ("amex\n3782\n822463\n10005\n", "amex\n[CARD]\n"),
        # a card on the line after a number, or before one, is still found
        ("Order 12345\n4111 1111 1111 1111", "Order 12345\n[CARD]"),
        ("4111111111111111\n2020", "[CARD]\n2020"),
    ],
)
def test_numbers_grouped_by_ideographic_spaces_tabs_or_line_breaks_are_redacted(text: str, expected: str) -> None:
    assert _both(text) == (expected, expected)


@pytest.mark.parametrize(
    "text",
    [
        # a column of figures, one a line: no four of its lines are a card, Luhn-valid or not
        "qty\n2500\n4111\n1111\n1111\n1111",
        "4111\n1111\n1111\n1111\n2500",
        "4111\n1111\n1111\n1111\n1111\n1111\n1111\n1111",
        # groups split over lines and spaces alike
        "4111 1111\n1111 1111",
        # a line break does not join a phone number's groups (a list, a table)
        "415\n555\n2671",
        "totals\r\n020\r\n7946\r\n0958",
        # figures in tab- or ideographic-space-separated cells are read as when spaced
        "2019\t2020\t2021",
        "100\t200\t300\t400",
        "１\u3000２\u3000３\u3000４\u3000５\u3000６\u3000７\u3000８\u3000９",
    ],
)
def test_columns_and_cells_of_figures_are_kept(text: str) -> None:
    assert _both(text) == (text, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tel.415.555.2671", "tel.[PHONE]"),
        ("Tel.+1.415.555.2671", "Tel.[PHONE]"),
        ("Ph.020.7946.0958", "Ph.[PHONE]"),
    ],
)
def test_a_dotted_phone_number_after_an_abbreviations_dot_is_redacted(text: str, expected: str) -> None:
    assert _both(text) == (expected, expected)


def test_a_dotted_run_after_a_digit_and_a_dot_and_addresses_in_logs_are_as_before() -> None:
    # part of a longer dotted run: judged whole, as before
    assert redact("1.192.168.100.200") == "[PHONE]"
    assert redact("build.2024.11.30") == "build.2024.11.30"  # a date
    assert redact("srv.192.168.100.200", keep_ipv4=True) == "srv.192.168.100.200"  # logs keep addresses


def test_an_id_holding_a_card_split_by_tabs_is_pseudonymised() -> None:
    assert id_holds_personal_data("4111\t1111\t1111\t1111")


@pytest.mark.parametrize("unit", ["4111\n", "4111\r\n", "4111\t", "１１１１\u3000", "415\t", "tel.4.", "a.12."])
def test_long_runs_of_new_separators_are_read_in_linear_time(unit: str) -> None:
    """A pasted run of 400 KB of one new separator's groups: read in about a second (a
    quadratic reading would run past the suite's per-test limit; no wall time is asserted,
    as in ``test_logs``), and kept as it is: a run of groups is no card or phone."""
    text = "x " + unit * (400_000 // len(unit))
    assert redact(text) == text
