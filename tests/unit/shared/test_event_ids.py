"""Event and conversation ids as support platforms write them: any printable text,
compared exactly. A chat keyed ``jane+vip@example.com``, ``conv 42`` or ``ticket#42`` was
dead-lettered as a ValidationError (pattern ``[\\w.:@/-]``) and never routed."""

from __future__ import annotations

import json
import re
import sys
import unicodedata

import pytest

from shared.events import (
    ID_INVISIBLE_ASTRAL,
    ID_INVISIBLE_CLASS,
    MAX_ID_CHARS,
    InvalidEvent,
    RawChat,
    decode_raw,
    parse,
    surrogate_free_id,
)
from shared.redact import id_holds_personal_data, pseudonymise

SUPPORT_IDS = [
    "jane+vip@example.com",
    "conv 42",
    "ticket#42",
    "AAMkAGI2TG93AAA+/w==",  # a base64 message id
    "50% off? <b>&amp;</b> 'quoted' \"too\"",
    "caf\u00e9 \u4f1a\u8a71 \U0001f4ac",
    "\U0001f469\u200d\U0001f4bb",  # an emoji sequence joined by U+200D
    "x" * MAX_ID_CHARS,
    "\U0001f4ac" * MAX_ID_CHARS,  # characters, not UTF-8 bytes, are counted
]


def _chat(value: str) -> bytes:
    return json.dumps({"id": value, "conversation_id": value, "text": "my card was declined"}).encode()


def _decode(value: bytes) -> RawChat:
    event = decode_raw(value, stream="chat", topic="chat.raw", partition=0, offset=0, timestamp_ms=0)
    assert isinstance(event, RawChat)
    return event


@pytest.mark.parametrize("value", SUPPORT_IDS)
def test_a_chat_keyed_as_a_support_platform_keys_it_is_decoded_with_its_ids_as_sent(value: str) -> None:
    event = _decode(_chat(value))
    assert (event.id, event.conversation_id) == (value, value)


def test_spaces_at_either_end_are_kept_not_trimmed() -> None:
    """Ids are compared exactly: a trimmed id would join another conversation."""
    event = _decode(_chat(" conv 42\u00a0"))
    assert (event.id, event.conversation_id) == (" conv 42\u00a0", " conv 42\u00a0")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "at least 1 character"),
        (" ", "must not be blank"),
        ("\u00a0\u2003\u3000", "must not be blank"),
        ("x" * (MAX_ID_CHARS + 1), f"at most {MAX_ID_CHARS} characters"),
        ("jane+vip@example.com\n", "U+000A (at index 20)"),  # a newline would split a log line
        ("conv\r42", "U+000D (at index 4)"),
        ("\x1b[31mconv", "U+001B (at index 0)"),  # a terminal escape
        ("conv\x0042", "U+0000 (at index 4)"),
        ("conv\x7f", "U+007F"),
        ("conv\x8542", "U+0085"),
        ("conv\u202842", "U+2028"),
        ("conv\u202e24", "U+202E"),  # right-to-left override: the log line would read "conv42" backwards
        ("conv\u206642", "U+2066"),
        ("conv\u200f42", "U+200F"),
    ],
)
def test_refused_ids_are_named_by_field_and_code_point_never_by_value(value: str, why: str) -> None:
    for field in ("id", "conversation_id"):
        record = {"id": "c-1", "conversation_id": "v-1", "text": "hi", "event_time": "2026-01-02T03:04:05Z"}
        with pytest.raises(InvalidEvent) as err:
            parse(RawChat, json.loads(json.dumps(record | {field: value})))
        assert err.value.error_class == "ValidationError"
        assert err.value.reason.startswith(f"{field}: ") and why in err.value.reason
        assert "jane" not in err.value.reason and "42" not in err.value.reason  # the DLQ reason holds no id


INVISIBLE_IDS = [
    "\u200b",  # zero-width space
    "\u3164",  # Hangul filler
    "\u2800",  # Braille pattern blank
    "\ufeff",  # byte order mark
    "\u2060",  # word joiner
    "\u115f\u1160",  # Hangul choseong and jungseong fillers
    "\uffa0",  # halfwidth Hangul filler
    "\u00ad",  # soft hyphen
    " \u200b\u00a0",  # spaces and a zero-width space
    "\U000e0001\U000e0041",  # tag characters
]


@pytest.mark.parametrize("value", INVISIBLE_IDS)
def test_an_id_without_a_visible_character_is_refused_as_blank_without_quoting_it(value: str) -> None:
    """Such an id was accepted though a blank one is refused: it reads as no id at all."""
    for field in ("id", "conversation_id"):
        record = {"id": "c-1", "conversation_id": "v-1", "text": "hi", "event_time": "2026-01-02T03:04:05Z"}
        with pytest.raises(InvalidEvent) as err:
            parse(RawChat, json.loads(json.dumps(record | {field: value})))
        assert err.value.error_class == "ValidationError"
        assert (
            err.value.reason.startswith(f"{field}: ") and "must not be blank: no visible character" in err.value.reason
        )
        assert not (set(value) - {" "}) & set(err.value.reason)  # the reason never quotes the id


@pytest.mark.parametrize("value", ["\u200bx", "x\u3164", "\u2800\u2801", "\U000e0001\U0001f4ac", "\u0600\u0661"])
def test_an_id_with_a_visible_character_among_invisible_ones_is_kept(value: str) -> None:
    event = _decode(_chat(value))
    assert (event.id, event.conversation_id) == (value, value)


def test_the_invisible_characters_are_the_spaces_format_characters_and_fillers_of_this_unicode() -> None:
    """The published pattern spells them out; a new Unicode version needs them (and the
    schemas) updated."""
    fillers = {0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800}
    expected = {c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in ("Zs", "Cf")} | fillers
    bmp = re.compile(f"[{ID_INVISIBLE_CLASS}]")
    listed = {c for c in range(0x10000) if bmp.match(chr(c))}
    listed |= {c for first, last in ID_INVISIBLE_ASTRAL for c in range(first, last + 1)}
    assert sorted(listed ^ expected) == [], f"Unicode {unicodedata.unidata_version}"


def test_a_lone_surrogate_in_an_id_reads_as_the_replacement_character_on_the_wire() -> None:
    # readable with U+FFFD, and a digest of the id as sent keeps it apart from an id that
    # differs only in its surrogate (see test_event_ids_surrogates.py)
    event = _decode(b'{"id": "c-1", "conversation_id": "conv \\ud83d 42", "text": "hi"}')
    assert event.conversation_id == surrogate_free_id("conv \ud83d 42")
    assert event.conversation_id.startswith("conv \ufffd 42~")
    with pytest.raises(ValueError, match="conversation_id"):
        RawChat(id="c-1", conversation_id="conv \ud83d 42", text="hi", event_time=event.event_time)


@pytest.mark.parametrize(
    "value",
    [
        "jane+vip@example.com",
        " jane+vip@example.com ",
        "conv jane@example.com",
        "ticket#jane+vip@example.com",
        '"Jane Doe" <jane+vip@example.com>',
        "j\u00f6rg@b\u00fccher.example",
        "mailto:jane%2Bvip%40example.com",  # a URL-encoded address, now a valid id
        "jane%40Example.com",
    ],
)
def test_an_id_holding_an_email_is_pseudonymised_whatever_surrounds_it(value: str) -> None:
    pseudonym = pseudonymise(value, b"k" * 16)
    assert pseudonym.startswith("pii-") and len(pseudonym) == 36
    assert pseudonym == pseudonymise(value, b"k" * 16)


@pytest.mark.parametrize(
    "value",
    [
        "whatsapp:+447911123456",  # SMS and WhatsApp gateways key chats by the number
        "WhatsApp:+44 7911 123456",
        "sms:07911123456",
        "tel:+1-415-555-2671",
        "+447911123456",
        "\uff0b44 7911 123456",  # full-width plus
        "conv-+447911123456",
        "415-555-2671",
        "(415) 555-2671",
        "07911 123456",
        "0044 7911 123456",
        "4111 1111 1111 1111",  # a card number (Luhn-checked, as in text)
        "order-4111111111111111",
        "ticket 5555555555554444",
        "GB82WEST12345698765432",  # an IBAN (mod-97-checked)
        "refund DE89 3704 0044 0532 0130 00",
    ],
)
def test_an_id_holding_a_phone_card_or_iban_number_is_pseudonymised(value: str) -> None:
    assert id_holds_personal_data(value)
    pseudonym = pseudonymise(value, b"k" * 16)
    assert pseudonym.startswith("pii-") and len(pseudonym) == 36
    assert pseudonym == pseudonymise(value, b"k" * 16) != pseudonymise(value, b"j" * 16)


@pytest.mark.parametrize(
    "value",
    [
        "conv 42",
        "ticket#42",
        "AAMkAGI2TG93AAA+/w==",
        "@handle",
        "user@localhost",
        "guardian-7@1764521234567",  # a replay's run stamp (Unix ms)
        "1234567890",  # a bare run of digits: an order number as often as a phone number
        "447911123456",
        "2026-11-30",  # a date: 8 digits
        "chat-2026-11-30-0001",
        "order 2026-0001",
        "session_5551234567",
        "4111111111111112",  # fails the Luhn check
        "wa:1",
        "v1.2.3",
    ],
)
def test_an_id_without_personal_data_is_kept(value: str) -> None:
    assert not id_holds_personal_data(value)
    assert pseudonymise(value, b"k" * 16) == value
