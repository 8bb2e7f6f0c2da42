"""``PLACEHOLDER`` matches every placeholder redaction writes (its readers, entity tagging
and an alert's terms, skip them), and nothing else bracketed."""

from __future__ import annotations

import re

from shared.redact import PLACEHOLDER, redact


def test_every_placeholder_redaction_writes_is_matched() -> None:
    text = redact(
        "mail jane@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111, iban DE89 3704 0044 0532 0130 00"
    )
    written = re.findall(r"\[[A-Z]+\]", text)
    assert sorted(written) == ["[CARD]", "[EMAIL]", "[IBAN]", "[PHONE]"]
    assert all(PLACEHOLDER.fullmatch(p) for p in written)
    assert PLACEHOLDER.sub(" ", text).count("[") == 0


def test_other_brackets_are_no_placeholder() -> None:
    assert PLACEHOLDER.search("[URL] [phone] [text removed by retention] PHONE") is None
