"""Numbers grouped by an ideographic space, and dotted numbers after an abbreviation's dot:
all were stored unredacted. A tab or a line break groups no number: it is a cell or row
boundary (a spreadsheet row or a table pasted as text is figures, not a card or phone)."""

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
        # a card on the line after a number, or before one, is still found
        ("Order 12345\n4111 1111 1111 1111", "Order 12345\n[CARD]"),
        ("4111111111111111\n2020", "[CARD]\n2020"),
    ],
)
def test_numbers_grouped_by_ideographic_spaces_are_redacted(text: str, expected: str) -> None:
    assert _both(text) == (expected, expected)


@pytest.mark.parametrize(
    "text",
    [
        # a column of figures, one a line: no four of its lines are a card, Luhn-valid or not
        # (a line break joins no card's groups: "2015".."2018" passes the Luhn check)
        "Revenue by year\n2015\n2016\n2017\n2018\nSource: company filings",
        "card 4111\r\n1111\r\n1111\r\n1111",
        "my card is\n4111\n1111\n1111\n1111",
        "amex\n3782\n822463\n10005\n",
        "see below\r\n4111\r\n1111\r\n1111\r\n1111\r\nthanks",
        "qty\n2500\n4111\n1111\n1111\n1111",
        "4111\n1111\n1111\n1111\n2500",
        "4111\n1111\n1111\n1111\n1111\n1111\n1111\n1111",
        # groups split over lines and spaces alike
        "4111 1111\n1111 1111",
        # a line break does not join a phone number's groups (a list, a table)
        "415\n555\n2671",
        "totals\r\n020\r\n7946\r\n0958",
        # a tab is a cell boundary: a spreadsheet row pasted as text is figures in cells
        "Metric\t2015\t2016\t2017\t2018\nRevenue\t120\t135\t150\t170",
        "123\t456\t7890",
        "SKU\t4006381\t333931\t12",
        "Qty\t12\t34\t56\t78\t90",
        "card 4111\t1111\t1111\t1111 exp 12/26",
        "call me on 415\t555\t2671",
        "4111\t1111\t1111\t1111",
        "phone 020\t7946\t0958",
        "2019\t2020\t2021",
        "100\t200\t300\t400",
        # figures in ideographic-space-separated cells are read as when spaced
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


def test_an_id_holding_a_card_split_by_ideographic_spaces_is_pseudonymised() -> None:
    assert id_holds_personal_data("4111\u30001111\u30001111\u30001111")
    assert not id_holds_personal_data("4111\t1111\t1111\t1111")  # cells, as before tabs were read


@pytest.mark.parametrize(
    "unit", ["4111\n", "4111\r\n", "4111\t", "１１１１\u3000", "4111\u3000", "415\t", "2015 ", "tel.4.", "a.12."]
)
def test_long_runs_of_new_separators_are_read_in_linear_time(unit: str) -> None:
    """A pasted run of 400 KB of one new separator's groups: read in about a second (a
    quadratic reading would run past the suite's per-test limit; no wall time is asserted,
    as in ``test_logs``), and kept as it is: a run of groups is no card or phone."""
    text = "x " + unit * (400_000 // len(unit))
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-15\t10:30 backup started",
        "2024-01-15\u300010:30 開始",
        "2024-01-15\u00a010:30 backup started",
        "15/01/2024\u300010:30",
    ],
)
def test_a_date_and_time_apart_by_a_tab_or_an_ideographic_space_is_kept(text: str) -> None:
    assert _both(text) == (text, text)


@pytest.mark.parametrize(
    "text",
    [
        "2015 2016 2017 2018",  # passes the Luhn check: a table's header, not a card
        "Revenue 2010 2011 2012 2013",
        "2015-2016-2017-2018",
        "２０１５\u3000２０１６\u3000２０１７\u3000２０１８",
    ],
)
def test_a_run_of_years_is_no_card(text: str) -> None:
    assert _both(text) == (text, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4111 1111 1111 1111", "[CARD]"),
        ("5555 5555 5555 4444", "[CARD]"),
        ("2223 0000 4841 0010", "[CARD]"),  # Mastercard's 2-series
        ("years 2015 2016 2017 2018 card 4111 1111 1111 1111", "years 2015 2016 2017 2018 card [CARD]"),
    ],
)
def test_cards_beside_years_are_still_redacted(text: str, expected: str) -> None:
    assert _both(text) == (expected, expected)
