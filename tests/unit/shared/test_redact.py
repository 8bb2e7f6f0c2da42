from __future__ import annotations

import pytest

from shared.logs import scrub
from shared.redact import cap, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe@example.com please", "write to [EMAIL] please"),
        ("call +44 7700 900123 now", "call [PHONE] now"),
        ("call 07700 900456", "call [PHONE]"),
        ("card 4111 1111 1111 1111 lost", "card [CARD] lost"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("iban ES91 2100 0418 4502 0005 1332 ok", "iban [IBAN] ok"),
        ("tel:07700900123", "tel:[PHONE]"),
        ("my number is 07700 900123: call me", "my number is [PHONE]: call me"),
        ("call 555 123 4567,555 987 6543", "call [PHONE],[PHONE]"),
        ("ring 0123456789.", "ring [PHONE]."),
        ("john.doe+tag@mail.example.co.uk wrote", "[EMAIL] wrote"),
    ],
)
def test_personal_data_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "FTSE 100 up 2.5% in 2020",
        "profit of 1,234,567 pounds",
        "2019-2020 results",
        "order 12345678",
        "runtime=33.0123456789",  # a decimal fraction, as in library log lines
        "ratio 1234567890.5",
        "paid on 2020-03-12 10:30:45 and again 2020-03-13T09:15Z",
    ],
)
def test_ordinary_numbers_are_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a card pasted with its expiry, CVV or a count next to it: the whole digit run
        # fails the Luhn check, the card inside it does not
        ("my card is 4111 1111 1111 1111 12/26 cvv 123", "my card is [CARD] 12/26 cvv 123"),
        ("4111111111111111 12/26", "[CARD] 12/26"),
        ("4111 1111 1111 1111 123", "[CARD] 123"),
        ("card 378282246310005 0926", "card [CARD] 0926"),
        ("the 3 4111 1111 1111 1111 card", "the 3 [CARD] card"),
        ("call 07700 900123 4111 1111 1111 1111", "call [PHONE] [CARD]"),
        ("4111\u00a01111\u00a01111\u00a01111", "[CARD]"),  # no-break spaces
    ],
)
def test_a_card_next_to_other_digits_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "call 415.555.2671",
        "+1.415.555.2671",
        "01.23.45.67.89",
        "+33 6.12.34.56.78",
        "030/1234567",
        "0171/1234567",
        "+44\u00a020\u00a07946\u00a00958",  # no-break spaces, as web pages paste them
        "+44\u202f20\u202f7946\u202f0958",  # narrow no-break spaces
        "415\u2013555\u20132671",  # en dashes
    ],
)
def test_dotted_slashed_and_unicode_spaced_phone_numbers_are_redacted(text: str) -> None:
    out = redact(text)
    assert "[PHONE]" in out and not any(ch.isdigit() for ch in out), out


@pytest.mark.parametrize(
    "text",
    ["12/03/2020 10:30", "2019/2020 results", "version 1.2.3", "12.03.2020", "shares 3.5 4.5 5.5 6.5", "ip 10.0.0.1"],
)
def test_dates_versions_and_decimals_are_not_phone_numbers(text: str) -> None:
    assert redact(text) == text


def test_a_long_token_without_an_at_sign_is_kept_whole() -> None:
    token = "A1_-." * 4000  # the shape that made the old email pattern rescan from every start
    assert redact(f"token {token} end") == f"token {token} end"


def test_non_luhn_16_digits_are_not_called_a_card() -> None:
    assert "[CARD]" not in redact("ref 1234 5678 9012 3456")


def test_cap() -> None:
    assert cap("abc", 5) == ("abc", False)
    text, truncated = cap("x" * 10, 5)
    assert truncated and len(text) == 5


def test_logs_scrub_secrets_and_pii() -> None:
    line = scrub("connect postgresql://tw:s3cret@db:5432/x key tw_abcd1234_SECRETSECRETSECRET1234 mail a@b.co")
    assert "s3cret" not in line and "SECRETSECRET" not in line and "a@b.co" not in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no personal data here at all", "no personal data here at all"),
        ("mail me at jo@example.org", "mail me at [EMAIL]"),
        ("ring ٠٧٧٠٠ ٩٠٠١٢٣", "ring [PHONE]"),  # Arabic-Indic digits are digits too
    ],
)
def test_fast_path_skips_only_texts_without_at_sign_or_digit(text: str, expected: str) -> None:
    assert redact(text) == expected
