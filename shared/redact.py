"""Personal data redaction: emails, phone numbers and card numbers are replaced
before text is stored or logged."""

from __future__ import annotations

import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 13-19 digits, optionally separated by single spaces or dashes (card numbers).
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# International or national phone numbers: 7+ digits with separators, not the
# fraction or integer part of a decimal number ("33.0123456789").
PHONE = re.compile(r"(?<![\w])(?<!\d\.)(?:\+|00)?\d[\d ()-]{6,}\d(?![\w])(?!\.\d)")
# "2020-03-12 10" followed by ":30" is a date and time, not a phone number.
_DATE_HOUR = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and _luhn_ok(digits):
        return "[CARD]"
    return match.group(0)


def _phone(match: re.Match[str]) -> str:
    raw = match.group(0)
    if _DATE_HOUR.fullmatch(raw) and match.string.startswith(":", match.end()):
        return raw
    digits = re.sub(r"\D", "", raw)
    international = raw.startswith(("+", "00"))
    if (9 <= len(digits) <= 15) or (international and 7 <= len(digits) <= 15):
        return "[PHONE]"
    return match.group(0)


# Every pattern above needs an "@" or a digit; most texts have neither.
_MAYBE_PERSONAL = re.compile(r"[@\d]")


def redact(text: str) -> str:
    """Replace emails, card numbers (Luhn-valid), IBANs and phone numbers."""
    if _MAYBE_PERSONAL.search(text) is None:
        return text
    text = EMAIL.sub("[EMAIL]", text)
    text = IBAN.sub("[IBAN]", text)
    text = CARD.sub(_card, text)
    return PHONE.sub(_phone, text)


def cap(text: str, limit: int) -> tuple[str, bool]:
    """Cap text for storage; returns (text, truncated)."""
    if len(text) <= limit:
        return text, False
    return text[: limit - 1] + "…", True
