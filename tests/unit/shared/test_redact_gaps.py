"""Gaps in the redaction of phone and card numbers, and figures read as phone numbers."""

from __future__ import annotations

import pytest

from shared.redact import redact, redact_capped


def _both(text: str) -> tuple[str, str]:
    return redact(text), redact(text, keep_ipv4=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a dash-grouped number before ".3pm" is no decimal's integer part
        ("call 415-555-2671.3pm", "call [PHONE].3pm"),
        ("call 415-555-2671.3 people", "call [PHONE].3 people"),
        ("call 415-555-2671-12.5", "call [PHONE]-12.5"),
        ("call (415) 555-2671.5", "call [PHONE].5"),
        ("call (415) 555-2671.", "call [PHONE]."),
        # a spaced figure before the dot is a decimal after the number
        ("415 555 2671 12.5", "[PHONE] 12.5"),
    ],
)
def test_a_phone_number_before_a_dot_and_digits_is_redacted(text: str, expected: str) -> None:
    assert _both(text) == (expected, expected)


@pytest.mark.parametrize(
    "text",
    [
        "ratio 1234567890.5",
        "runtime=33.0123456789",
        "total 1 234 567.5",
        "EUR 12 345 678.90",
        "up 1234567890.5bn",
        "order 99934570 61.3% up",  # a figure after a space may be a decimal's integer part
        "2019-2020.5",
    ],
)
def test_decimals_are_still_kept(text: str) -> None:
    assert _both(text) == (text, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("415 555 2671 2020 2021", "[PHONE] 2020 2021"),
        ("2020 2021 415 555 2671", "2020 2021 [PHONE]"),
        ("call 2019 2020 2021 415-555-2671 now", "call 2019 2020 2021 [PHONE] now"),
        ("98765 43210 2019 2020", "[PHONE] 2019 2020"),
        ("2019 2020 020 7946 0958", "2019 2020 [PHONE]"),
        ("415-555-2671 2020 2021 2022", "[PHONE] 2020 2021 2022"),
        ("415 555 2671 2", "[PHONE] 2"),
        ("1 8 800 555 35 35", "1 [PHONE]"),
        ("3 1 415 555 2671", "3 [PHONE]"),
    ],
)
def test_a_phone_number_next_to_years_or_small_figures_is_redacted(text: str, expected: str) -> None:
    assert _both(text) == (expected, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("030/123 456", "[PHONE]"),
        ("Tel. 0171/123 45 67 bitte", "Tel. [PHONE] bitte"),
        ("415/555-2671", "[PHONE]"),
        ("call 415/555 2671, thanks", "call [PHONE], thanks"),
        ("call 415/555-2671x12 now", "call [PHONE] now"),
    ],
)
def test_slash_separated_phone_numbers_are_redacted(text: str, expected: str) -> None:
    assert _both(text) == (expected, expected)


@pytest.mark.parametrize(
    "text",
    ["01/2020 2021 2022", "2019/2020 2021", "12/03/2020 10:30", "page 03/12 of 2020", "1/2 345 678", "100/200 300 400"],
)
def test_slashed_dates_years_and_fractions_are_kept(text: str) -> None:
    assert _both(text) == (text, text)


@pytest.mark.parametrize(
    "text",
    ["4111_1111_1111_1111", "4111/1111/1111/1111", "3782_822463_10005", "5555/5555/5555/4444"],
)
def test_cards_split_by_underscores_or_slashes_are_redacted(text: str) -> None:
    assert _both(f"card {text} ok") == ("card [CARD] ok", "card [CARD] ok")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\uff0b44 20 7946 0958", "[PHONE]"),  # full-width plus
        ("call \uff0b1-415-555-2671x12 now", "call [PHONE] now"),
        ("\uff0b33 6.12.34.56.78", "[PHONE]"),
        ("\uff0b44 7700 900123 07700 900124", "[PHONE] [PHONE]"),
    ],
)
def test_a_full_width_plus_goes_with_the_number(text: str, expected: str) -> None:
    assert _both(text) == (expected, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # "2671 4111 1111 1111" passes the Luhn check: the card took the phone's last group
        ("415-555-2671\u00a04111 1111 1111 1111", "[PHONE]\u00a0[CARD]"),
        ("415-555-2671 4111 1111 1111 1111", "[PHONE] [CARD]"),
        ("call 415-555-2671, card 4111 1111 1111 1111", "call [PHONE], card [CARD]"),
        ("4111 1111 1111 1111 415-555-2671", "[CARD] [PHONE]"),
        ("4111 1111 1111 1111\u00a0415-555-2671", "[CARD]\u00a0[PHONE]"),
        # one separator throughout: the card is where the Luhn check puts it, as before
        ("12-4111-1111-1111-1111", "12-[CARD]"),
        ("the 3 4111 1111 1111 1111 card", "the 3 [CARD] card"),
    ],
)
def test_a_phone_number_next_to_a_card_is_redacted_whole(text: str, expected: str) -> None:
    assert _both(text) == (expected, expected)
    assert redact_capped(text, 4_000) == (expected, False)


@pytest.mark.parametrize(
    "text",
    [
        # lists of figures: single digits, round figures, thousands, progressions, scores
        "1 2 3 4 5 6 7 8 9",
        "digits 3 1 4 1 5 9 2 6 5",
        "lottery 4 8 15 16 23 42",
        "100 200 300 400",
        "10 20 30 40 50",
        "600 700 800 900",
        "1000 2000 3000",
        "1 10 100 1000 10000",
        "EUR 1 000 000 000",
        "1 234 567 890",
        "5 10 15 20 25",
        "12 15 18 21 24",
        "99 98 97 96 95",
        "11 22 33 44 55",
        "won 21-14 7-3 10-7",
        "1-2-3-4-5-6-7-8-9",
        # years with a count or a rank
        "7 2019 2020 2021",
        "2020 2021 3",
        "top 3 2020 2021",
        "1234 5678 9",
    ],
)
def test_runs_of_figures_are_not_phone_numbers(text: str) -> None:
    assert _both(text) == (text, text)


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3 4.5.6",
        "versions 1.2.3 4.5.6 7.8.9",
        "2019 2020 2021 2022",
        "£1,234.56",
        "$12.5bn",
        "up 12.5% to 3,456.78",
        "at 10:30:45",
        "on 2026-11-30 and 12/03/2020",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "sha 4111111111111111abcdef0123456789abcdef01",
    ],
)
def test_versions_years_amounts_times_and_ids_are_kept(text: str) -> None:
    assert _both(text) == (text, text)


@pytest.mark.parametrize(
    "text",
    [
        "1 415 555 2671",
        "1-800-555-0199",
        "8 800 555 35 35",
        "33 6 12 34 56 78",
        "612 345 678",
        "48 612 345 678",  # a Polish number with its country code, no plus
        "91 123 45 67",
        "12 34 56 78 90",
        "01 23 45 67 89",
        "555 120 4567",
        "2020 2021 555",
    ],
)
def test_phone_numbers_in_figure_like_groups_are_still_redacted(text: str) -> None:
    assert _both(f"call {text} now") == ("call [PHONE] now", "call [PHONE] now")


@pytest.mark.parametrize("unit", ["1 ", "1-", "12 ", "4111_", "2020 ", "( "])
def test_long_runs_of_figures_are_kept_and_read_once(unit: str) -> None:
    """A pasted run of 32k characters: read in one pass (the run is no phone number, nor a
    card), not once from every group."""
    text = "x " + unit * (32_000 // len(unit)) + "1.5"
    assert redact(text) == text
