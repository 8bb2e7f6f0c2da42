from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from shared import schemas
from shared.events import ALL_CONTRACTS, MAX_TEXT_CHARS, InvalidEvent, parse


def test_checked_in_schemas_match_contracts() -> None:
    assert schemas.drift() == [], "run `tonewatch contracts export`"


def test_drift_detects_a_stale_file(tmp_path: Path) -> None:
    schemas.write(tmp_path)
    assert schemas.drift(tmp_path) == []
    (tmp_path / "raw_news.v1.json").write_text("{}")
    (tmp_path / "old.v0.json").write_text("{}")
    assert schemas.drift(tmp_path) == ["old.v0.json", "raw_news.v1.json"]


# The published schema and the pydantic contract must agree on every raw event a producer can send
# (ingest takes only RawNews and RawChat from outside). Each case: contract, event, whether the
# contract accepts it. NEWS and CHAT are valid; a case changes them (DROP removes a key).
DROP = object()
NEWS: dict[str, Any] = {"id": "n-1", "event_time": "2026-01-02T03:04:05Z", "text": "Acme shares slump"}
CHAT: dict[str, Any] = {
    "id": "c-1",
    "event_time": "2026-01-02T03:04:05Z",
    "text": "lost my card",
    "conversation_id": "v-1",
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not DROP}


def _news(**changes: Any) -> tuple[str, dict[str, Any]]:
    return "raw_news", _with(NEWS, **changes)


def _chat(**changes: Any) -> tuple[str, dict[str, Any]]:
    return "raw_chat", _with(CHAT, **changes)


ACCEPTED = {
    "news minimal": _news(),
    "news every field": _news(schema_version=1, stream="news", source="wire", url="https://x.invalid/a"),
    "news null optionals": _news(source=None, url=None),
    "news schema_version 1.0": _news(schema_version=1.0),
    "chat minimal": _chat(),
    "chat every field": _chat(schema_version=1, stream="chat", source="app", customer_id="cu-9", channel="web"),
    "chat null optionals": _chat(source=None, customer_id=None, channel=None),
    "text padded": _news(text="  x \n"),
    "text one character": _news(text="x"),
    "text zero-width space (not whitespace)": _news(text="\u200b"),
    "text byte order mark (not whitespace)": _news(text="\ufeff"),
    "text at the limit": _news(text="x" * MAX_TEXT_CHARS),
    "id every symbol": _news(id="a_b.c:d@e/f-G9"),
    "id 128 characters": _news(id="i" * 128),
    "conversation_id 128 characters": _chat(conversation_id="v" * 128),
    # Ids as other systems write them: any printable text, compared exactly.
    "conversation_id plus-address": _chat(conversation_id="jane+vip@example.com"),
    "conversation_id with a space": _chat(conversation_id="conv 42"),
    "conversation_id with a hash": _chat(conversation_id="ticket#42"),
    "conversation_id spaces at either end (kept)": _chat(conversation_id=" conv 42 "),
    "conversation_id ASCII punctuation": _chat(conversation_id="!\"#$%&'()*+,;<=>?[\\]^`{|}~"),
    "conversation_id non-ASCII": _chat(conversation_id="v\u00e9"),
    "conversation_id 128 emoji": _chat(conversation_id="\U0001f4ac" * 128),
    "conversation_id no-break space inside": _chat(conversation_id="conv\u00a042"),
    "conversation_id zero-width joiner (emoji sequences)": _chat(conversation_id="\U0001f469\u200d\U0001f4bb"),
    "id with a space": _news(id="a b"),
    "id base64": _news(id="AAMkAGI2TG93AAA+/w=="),
    "id superscript digit": _news(id="x\u00b2"),
    "id precomposed letter": _news(id="caf\u00e9"),
    "id with a combining mark": _news(id="cafe\u0301"),
    "id Arabic-Indic digit": _news(id="\u0663"),
    "id letter-like numeral": _news(id="\u216b"),
    "id CJK": _news(id="\u4f1a\u8a71-42"),
    "id zero-width space before a letter": _news(id="\u200bx"),
    "conversation_id tag character before an emoji": _chat(conversation_id="\U000e0001\U0001f4ac"),
    "time lower-case t and z": _news(event_time="2026-01-02t03:04:05z"),
    "time nanoseconds": _news(event_time="2026-01-02T03:04:05.123456789Z"),
    "time +14:00": _news(event_time="2026-01-02T03:04:05+14:00"),
    "time +23:59": _news(event_time="2026-01-02T03:04:05+23:59"),
    "time -00:00": _news(event_time="2026-01-02T03:04:05-00:00"),
    "time leap day": _news(event_time="2024-02-29T00:00:00Z"),
    "time earliest": _news(event_time="1900-01-01T00:00:00Z"),
    "time earliest, negative offset": _news(event_time="1900-01-01T00:00:00-05:00"),
    "time 1900 after new year": _news(event_time="1900-01-02T00:00:00+14:00"),
    "time latest": _news(event_time="8999-12-31T23:59:59.999999Z"),
    "time latest, positive offset": _news(event_time="8999-12-31T23:00:00+05:00"),
    "time 8999 before new year's eve": _news(event_time="8999-12-30T23:00:00-14:00"),
    "chat time with offset": _chat(event_time="2026-01-02T03:04:05+01:00"),
    "unix seconds": _news(event_time=1767225600),
    "unix seconds, fraction": _news(event_time=1767225600.5),
    "unix zero": _news(event_time=0),
    "unix seconds, earliest": _news(event_time=-2208988800),
    "unix seconds up to 2e10": _news(event_time=20_000_000_000),
    "unix milliseconds": _news(event_time=1767225600000),
    "unix milliseconds, latest": _news(event_time=221845391999999),
    "unix milliseconds, negative": _news(event_time=-20_000_000_001),
    "unix milliseconds, earliest": _news(event_time=-2208988800000),
    "chat unix milliseconds": _chat(event_time=1767225600000),
}
REJECTED = {
    "text empty": _news(text=""),
    "text blank": _news(text=" "),
    "text tabs and newlines": _news(text="\t\r\n\v\f"),
    "text unicode spaces": _news(text="\u00a0\u1680\u2007\u202f\u205f\u3000\u2028\u2029"),
    "text separators str.strip removes": _news(text="\x1c\x1d\x1e\x1f\x85"),
    "chat text blank": _chat(text=" \n "),
    "text over the limit": _news(text="x" * (MAX_TEXT_CHARS + 1)),
    "text a number": _news(text=42),
    "text null": _news(text=None),
    "text missing": _news(text=DROP),
    "id empty": _news(id=""),
    "id missing": _news(id=DROP),
    "id null": _news(id=None),
    "id a number": _news(id=7),
    "id trailing newline": _news(id="a\n"),
    "id 129 characters": _news(id="i" * 129),
    "id blank": _news(id=" "),
    "id tab inside": _news(id="a\tb"),
    "id DEL": _news(id="a\x7f"),
    "id C1 next line": _news(id="a\x85b"),
    "id line separator": _news(id="a\u2028b"),
    "id right-to-left override": _news(id="a\u202eb"),
    "conversation_id empty": _chat(conversation_id=""),
    "conversation_id trailing newline": _chat(conversation_id="v\n"),
    "conversation_id missing": _chat(conversation_id=DROP),
    "conversation_id null": _chat(conversation_id=None),
    "conversation_id blank": _chat(conversation_id="  "),
    "conversation_id Unicode spaces only": _chat(conversation_id="\u00a0\u2003\u3000"),
    "conversation_id NUL": _chat(conversation_id="v\x00"),
    "conversation_id carriage return": _chat(conversation_id="conv\r42"),
    "conversation_id escape sequence": _chat(conversation_id="\x1b[31mconv"),
    "conversation_id bidi isolate": _chat(conversation_id="conv\u206642"),
    "id zero-width space only": _news(id="\u200b"),
    "id Hangul filler only": _news(id="\u3164"),
    "id Braille blank only": _news(id="\u2800"),
    "id byte order mark only": _news(id="\ufeff"),
    "id word joiner only": _news(id="\u2060"),
    "conversation_id halfwidth Hangul filler and spaces": _chat(conversation_id=" \uffa0 "),
    "conversation_id tag characters only": _chat(conversation_id="\U000e0001\U000e0041"),
    "conversation_id 129 emoji": _chat(conversation_id="\U0001f4ac" * 129),
    "time naive": _news(event_time="2026-01-02T03:04:05"),
    "chat time naive": _chat(event_time="2026-01-02T03:04:05.5"),
    "time date only": _news(event_time="2026-01-02"),
    "time words": _news(event_time="yesterday"),
    "time empty": _news(event_time=""),
    "time null": _news(event_time=None),
    "time missing": _news(event_time=DROP),
    "time a boolean": _news(event_time=True),
    "time year 1800": _news(event_time="1800-06-01T00:00:00Z"),
    "chat time year 1800": _chat(event_time="1800-06-01T00:00:00Z"),
    "time before earliest": _news(event_time="1899-12-31T23:59:59Z"),
    "time before earliest in UTC": _news(event_time="1900-01-01T00:30:00+01:00"),
    "time latest excluded": _news(event_time="9000-01-01T00:00:00Z"),
    "time after latest in UTC": _news(event_time="8999-12-31T23:30:00-01:00"),
    "time year 9999, -14:00": _news(event_time="9999-12-31T23:59:59-14:00"),
    "time year 1, +14:00": _news(event_time="0001-01-01T00:00:00+14:00"),
    "time leap second": _news(event_time="2016-12-31T23:59:60Z"),
    "time hour 24": _news(event_time="2026-01-02T24:00:00Z"),
    "time offset +24:00": _news(event_time="2026-01-02T03:04:05+24:00"),
    "time offset minutes 60": _news(event_time="2026-01-02T03:04:05+01:60"),
    "time offset hours only": _news(event_time="2026-01-02T03:04:05+01"),
    "time February 30": _news(event_time="2026-02-30T00:00:00Z"),
    "time trailing newline": _news(event_time="2026-01-02T03:04:05Z\n"),
    "time leading space": _news(event_time=" 2026-01-02T03:04:05Z"),
    "unix seconds before earliest": _news(event_time=-2208988801),
    "unix -2e10 is seconds (year 1336)": _news(event_time=-20_000_000_000),
    "unix milliseconds, latest excluded": _news(event_time=221845392000000),
    "unix milliseconds before earliest": _news(event_time=-2208988800001),
    "unix huge": _news(event_time=1e300),
    # Digits in a string (a CSV field) were Unix seconds: "2026" was 1970-01-01T00:33:46Z.
    "unix seconds as a string": _news(event_time="1767225600"),
    "a year as a string": _news(event_time="2026"),
    "a compact date as a string": _news(event_time="20261201"),
    "signed decimal seconds as a string": _chat(event_time="-2026.5"),
    "extra field": _news(extra=1),
    "news with stream chat": _news(stream="chat"),
    "chat with stream news": _chat(stream="news"),
    "news with conversation_id": _news(conversation_id="v-1"),
    "schema_version 2": _news(schema_version=2),
    "schema_version a string": _news(schema_version="1"),
    "source too long": _news(source="s" * 201),
    "url too long": _news(url="u" * 2001),
    "customer_id too long": _chat(customer_id="c" * 129),
    "channel too long": _chat(channel="c" * 65),
    "channel a number": _chat(channel=3),
}
# The contract accepts these; the schema cannot say so and refuses them (never the other way round,
# so a producer that validates with the published schema is not dead-lettered).
SCHEMA_STRICTER = {
    "time space separator (not RFC 3339)": _news(event_time="2026-01-02 03:04:05Z"),
    "time without seconds (not RFC 3339)": _news(event_time="2026-01-02T03:04Z"),
    "time offset without colon (not RFC 3339)": _news(event_time="2026-01-02T03:04:05+0100"),
    "time comma before fraction (not RFC 3339)": _news(event_time="2026-01-02T03:04:05,5Z"),
    "local 1899-12-31, 1900 in UTC (no offset arithmetic)": _news(event_time="1899-12-31T23:30:00-01:00"),
    "local 9000-01-01, 8999 in UTC (no offset arithmetic)": _news(event_time="9000-01-01T00:30:00+01:00"),
    "1900-01-01, positive offset, in range (no offset arithmetic)": _news(event_time="1900-01-01T01:00:00+00:30"),
    "8999-12-31, negative offset, in range (no offset arithmetic)": _news(event_time="8999-12-31T20:00:00-01:00"),
    "schema_version true (pydantic's Literal[1] takes True == 1)": _news(schema_version=True),
}


def _schema_accepts(contract: str, event: dict[str, Any]) -> bool:
    schema = json.loads((schemas.SCHEMA_DIR / f"{contract}.v1.json").read_text())
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    # Without rfc3339-validator installed, jsonschema skips the date-time format silently.
    assert not Draft202012Validator.FORMAT_CHECKER.conforms("2026-02-30T00:00:00Z", "date-time")
    return bool(validator.is_valid(event))


def _contract_accepts(contract: str, event: dict[str, Any]) -> bool:
    try:
        parse(ALL_CONTRACTS[contract], event)
    except InvalidEvent:
        return False
    return True


@pytest.mark.parametrize(
    ("case", "accepted"),
    [(c, True) for c in ACCEPTED] + [(c, False) for c in REJECTED],
)
def test_published_raw_schemas_agree_with_the_contracts(case: str, accepted: bool) -> None:
    contract, event = (ACCEPTED if accepted else REJECTED)[case]
    event = json.loads(json.dumps(event))  # as it arrives on the wire
    assert _contract_accepts(contract, event) is accepted
    assert _schema_accepts(contract, event) is accepted


@pytest.mark.parametrize("case", list(SCHEMA_STRICTER))
def test_published_raw_schemas_are_stricter_only_where_listed(case: str) -> None:
    contract, event = SCHEMA_STRICTER[case]
    event = json.loads(json.dumps(event))
    assert _contract_accepts(contract, event)
    assert not _schema_accepts(contract, event)


def test_text_pattern_whitespace_is_what_str_strip_removes() -> None:
    from shared.events import WHITESPACE_CLASS

    whitespace = re.compile(f"[{WHITESPACE_CLASS}]")
    differ = [hex(c) for c in range(sys.maxunicode + 1) if bool(whitespace.match(chr(c))) != chr(c).isspace()]
    assert differ == []


def test_id_pattern_refuses_what_the_contract_refuses_code_point_by_code_point() -> None:
    """Every character alone (blank or not) and after another (refused or not): the published
    pattern and the contract agree. Surrogates are left out (pydantic's str refuses them)."""
    from pydantic import TypeAdapter, ValidationError

    from shared.events import EVENT_ID_SCHEMA_PATTERN, EventId

    adapter: TypeAdapter[str] = TypeAdapter(EventId)
    pattern = re.compile(EVENT_ID_SCHEMA_PATTERN)

    def contract_accepts(value: str) -> bool:
        try:
            adapter.validate_python(value)
        except ValidationError:
            return False
        return True

    differ = [
        value
        for c in range(sys.maxunicode + 1)
        if not 0xD800 <= c <= 0xDFFF
        for value in (chr(c), "x" + chr(c))
        if contract_accepts(value) != bool(pattern.match(value))
    ]
    assert differ == []


# Scored events and routed chats come from our services, not from outside, but their schemas are
# published too: they refuse NUL where the contracts do (PostgreSQL stores these strings and cannot
# hold NUL; a text may, the aggregator replaces it). Each case: contract, event, accepted.
SCORE: dict[str, Any] = {"label": "neutral", "confidence": 0.9, "probs": {"neutral": 0.9}, "model": "m", "version": "v"}
INTENT: dict[str, Any] = {**SCORE, "label": "card_declined", "probs": {"card_declined": 0.9}}
SCORED: dict[str, Any] = {
    "id": "s-1",
    "stream": "chat",
    "event_time": "2026-01-02T03:04:05Z",
    "received_time": "2026-01-02T03:04:05Z",
    "text": "lost my card",
    "entities": ["_all"],
    "sentiment": SCORE,
    "intent": INTENT,
    "conversation_id": "v-1",
}
ROUTED: dict[str, Any] = {
    "id": "s-1",
    "conversation_id": "v-1",
    "event_time": "2026-01-02T03:04:05Z",
    "queue": "cards",
    "intent": "card_declined",
    "confidence": 0.9,
    "priority": False,
    "reason": "intent card_declined 0.90",
    "text": "lost my card",
    "sentiment": "neutral",
}
NUL_CASES: dict[str, tuple[str, dict[str, Any], bool]] = {
    "scored minimal": ("scored_event", SCORED, True),
    "scored text with NUL": ("scored_event", _with(SCORED, text="a\x00b"), True),
    "scored source with NUL (not stored)": ("scored_event", _with(SCORED, source="s\x00"), True),
    "scored entity with NUL": ("scored_event", _with(SCORED, entities=["_all", "AC\x00ME"]), False),
    "scored entity of NUL only": ("scored_event", _with(SCORED, entities=["\x00"]), False),
    "scored conversation_id with NUL": ("scored_event", _with(SCORED, conversation_id="v\x00"), False),
    "scored sentiment version with NUL": (
        "scored_event",
        _with(SCORED, sentiment={**SCORE, "version": "v\x00"}),
        False,
    ),
    "scored sentiment model with NUL": ("scored_event", _with(SCORED, sentiment={**SCORE, "model": "\x00m"}), False),
    "scored intent label with NUL": ("scored_event", _with(SCORED, intent={**INTENT, "label": "card\x00"}), False),
    "scored intent probs key with NUL": (
        "scored_event",
        _with(SCORED, intent={**INTENT, "probs": {"a\x00": 0.9}}),
        False,
    ),
    "routed minimal": ("routed_chat", ROUTED, True),
    "routed text with NUL": ("routed_chat", _with(ROUTED, text="\x00"), True),
    "routed conversation_id with NUL": ("routed_chat", _with(ROUTED, conversation_id="v\x00"), False),
    "routed queue with NUL": ("routed_chat", _with(ROUTED, queue="cards\x00"), False),
    "routed intent with NUL": ("routed_chat", _with(ROUTED, intent="\x00"), False),
    "routed reason with NUL": ("routed_chat", _with(ROUTED, reason="intent \x00"), False),
    "routed sentiment with NUL": ("routed_chat", _with(ROUTED, sentiment="neutral\x00"), False),
}


@pytest.mark.parametrize("case", list(NUL_CASES))
def test_published_stored_schemas_refuse_nul_where_the_contracts_do(case: str) -> None:
    contract, event, accepted = NUL_CASES[case]
    event = json.loads(json.dumps(event))  # as it arrives on the wire ("\u0000")
    assert _contract_accepts(contract, event) is accepted
    assert _schema_accepts(contract, event) is accepted
