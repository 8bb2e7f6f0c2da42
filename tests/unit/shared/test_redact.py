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
