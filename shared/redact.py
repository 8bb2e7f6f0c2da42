"""Personal data redaction: emails, phone numbers and card numbers are replaced
before text is stored or logged."""

from __future__ import annotations

import re

# Not anchored on the left, "[\w.+-]+@" would rescan a long run of such characters
# (a pasted token) from every start: quadratic. The look-behind makes it linear.
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Separators inside a number as people paste them: space, dash, and the no-break,
# narrow, thin and figure spaces and dashes that web pages and word processors insert.
_SEP = " \u00a0\u2007\u2009\u202f\\-\u2010\u2011\u2013"
# A run of digit groups, each separated by one separator. Card numbers are looked for
# inside it, group-aligned (see _cards): a card next to an expiry date, a CVV or a
# phone number is still found.
DIGIT_GROUPS = re.compile(rf"(?<!\d)\d+(?:[{_SEP}]\d+)*(?!\d)")
# International or national phone numbers: 7+ digits with separators, not the
# fraction or integer part of a decimal number ("33.0123456789").
PHONE = re.compile(rf"(?<![\w])(?<!\d\.)(?:\+|00)?\d[\d(){_SEP}]{{6,}}\d(?![\w])(?!\.\d)")
# Dotted (415.555.2671, 01.23.45.67.89, +33 6.12.34.56.78) and slashed (030/1234567)
# numbers: at least two dots between short groups, or one slash, so a decimal is not one.
PHONE_DOTTED = re.compile(
    r"(?<![\w.])(?:(?:\+|00)\d{1,3}[ .\u00a0]?)?\(?\d{1,4}\)?(?:\.\d{2,4}){2,5}(?![\w])(?!\.\d)"
    r"|(?<![\w/.])(?:\+|00)?\d{2,5}/\d{4,9}(?![\w/])(?!\.\d)"
)
# "2020-03-12 10" or "12/03/2020 10" followed by ":30" is a date and time, not a phone number.
_DATE_HOUR = re.compile(r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})[ T]\d{1,2}")
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


def _cards(match: re.Match[str]) -> str:
    """Replace every Luhn-valid 13-19 digit card number in a run of digit groups.

    The card must start and end on group boundaries ("4111 1111 1111 1111 12/26":
    the first four groups), so the digits of a long reference number are not combed
    for a span that happens to pass the Luhn check (one in ten does)."""
    run = match.group(0)
    groups = [(g.start(), g.end()) for g in re.finditer(r"\d+", run)]
    if sum(b - a for a, b in groups) < 13:
        return run
    out, done, i = [], 0, 0
    while i < len(groups):
        found = None
        digits = ""
        for j in range(i, len(groups)):
            digits += run[groups[j][0] : groups[j][1]]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and _luhn_ok(digits):
                found = j  # keep the longest valid span from this start
        if found is None:
            i += 1
            continue
        out.append(run[done : groups[i][0]])
        out.append("[CARD]")
        done = groups[found][1]
        i = found + 1
    out.append(run[done:])
    return "".join(out)


def _phone(match: re.Match[str]) -> str:
    raw = match.group(0)
    if "[CARD]" in raw:
        return raw
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
    text = DIGIT_GROUPS.sub(_cards, text)
    text = PHONE_DOTTED.sub(_phone, text)
    return PHONE.sub(_phone, text)


def cap(text: str, limit: int) -> tuple[str, bool]:
    """Cap text for storage; returns (text, truncated)."""
    if len(text) <= limit:
        return text, False
    return text[: limit - 1] + "…", True
