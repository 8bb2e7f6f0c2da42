from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.events import (
    ALL_CONTRACTS,
    InvalidEvent,
    RawChat,
    RawNews,
    RoutedChat,
    Score,
    ScoredEvent,
    decode_json,
    decode_raw,
    parse,
    position_id,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_raw_news_round_trip() -> None:
    e = RawNews(id="n-1", event_time=T0, text="BP profits surge", source="wire")
    back = RawNews.model_validate_json(e.to_bytes())
    assert back == e


def test_raw_chat_round_trip() -> None:
    e = RawChat(id="c-1", event_time=T0, text="lost my card", conversation_id="conv-1")
    assert RawChat.model_validate_json(e.to_bytes()) == e


def test_scored_event_round_trip_and_score() -> None:
    s = Score(
        label="negative",
        confidence=0.8,
        probs={"negative": 0.8, "neutral": 0.15, "positive": 0.05},
        model="m",
        version="v1",
    )
    e = ScoredEvent(
        id="x", stream="news", event_time=T0, received_time=T0, text="t", entities=["BP", "_all"], sentiment=s
    )
    assert ScoredEvent.model_validate_json(e.to_bytes()) == e
    assert e.sentiment_score == pytest.approx(-0.75)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"id": "a", "event_time": "2026-01-01T00:00:00Z", "text": ""}, "text"),
        ({"id": "a", "event_time": "2026-01-01T00:00:00Z", "text": "   "}, "text"),
        ({"id": "a", "event_time": "2026-01-01T00:00:00Z", "text": 42}, "text"),
        ({"id": "a", "event_time": "yesterday", "text": "x"}, "event_time"),
        ({"id": "a", "event_time": "2026-01-01T00:00:00", "text": "x"}, "event_time"),
        ({"id": "a", "event_time": "0001-01-01T00:00:00+14:00", "text": "x"}, "event_time"),  # overflows in UTC
        ({"id": "a", "event_time": "9999-12-31T23:59:59-14:00", "text": "x"}, "event_time"),
        ({"id": "a", "event_time": "1899-12-31T23:59:59Z", "text": "x"}, "event_time"),
        ({"id": "a\tb", "event_time": "2026-01-01T00:00:00Z", "text": "x"}, "id"),
        ({"id": "a", "event_time": "2026-01-01T00:00:00Z", "text": "x", "extra": 1}, "extra"),
    ],
)
def test_invalid_raw_news_gives_field_level_error(payload: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        parse(RawNews, payload)
    assert err.value.reason.startswith(field) or f"; {field}" in err.value.reason


def test_chat_requires_conversation_id() -> None:
    with pytest.raises(InvalidEvent, match="conversation_id"):
        parse(RawChat, {"id": "a", "event_time": "2026-01-01T00:00:00Z", "text": "x"})


def test_decode_raw_assigns_stable_id_and_time_from_record() -> None:
    a = decode_raw(b'{"text": "hello"}', stream="news", topic="news.raw", partition=1, offset=7, timestamp_ms=0)
    b = decode_raw(b'{"text": "hello"}', stream="news", topic="news.raw", partition=1, offset=7, timestamp_ms=0)
    assert a.id == b.id == position_id("news.raw", 1, 7)
    assert a.event_time == datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "error_class"),
    [
        (b"{not json", "JSONDecodeError"),
        (b"\xff\xfe\x00", "UnicodeDecodeError"),
        (b"[1, 2]", "JSONDecodeError"),
        (None, "EmptyRecord"),
        (json.dumps({"text": "x", "stream": "weather"}).encode(), "UnknownStream"),
        (json.dumps({"text": ["x"]}).encode(), "ValidationError"),
    ],
)
def test_decode_raw_rejects_bad_bytes(value: bytes | None, error_class: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        decode_raw(value, stream="news", topic="news.raw", partition=0, offset=0, timestamp_ms=1)
    assert err.value.error_class == error_class
    assert err.value.reason


def test_every_contract_has_schema_version_and_json_schema() -> None:
    for contract in ALL_CONTRACTS.values():
        schema = contract.model_json_schema()
        assert "schema_version" in schema["properties"]


INTENT = {"label": "card_declined", "confidence": 0.9, "probs": {"card_declined": 0.9}, "model": "m", "version": "v1"}


def _scored_chat(**changes: object) -> dict[str, object]:
    """A valid scored chat on the wire, with ``changes``."""
    sentiment = INTENT | {"label": "neutral", "probs": {"neutral": 0.9}}
    base = {
        "id": "s-1",
        "stream": "chat",
        "event_time": "2026-01-02T03:04:05Z",
        "received_time": "2026-01-02T03:04:05Z",
        "text": "lost my card",
        "entities": ["_all"],
        "sentiment": sentiment,
        "intent": INTENT,
        "conversation_id": "v-1",
    }
    return base | changes


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"entities": ["_all", "AC\x00ME"]}, "entities.1"),
        ({"conversation_id": "v\x00"}, "conversation_id"),
        ({"intent": INTENT | {"label": "card\x00"}}, "intent.label"),
        ({"intent": INTENT | {"version": "v\x00"}}, "intent.version"),
        ({"intent": INTENT | {"model": "m\x00"}}, "intent.model"),
        ({"intent": INTENT | {"probs": {"card\x00": 0.9}}}, "intent.probs.card\x00.[key]"),
    ],
)
def test_scored_event_refuses_nul_where_postgresql_stores_the_string(changes: dict[str, object], field: str) -> None:
    """PostgreSQL refuses NUL in text and jsonb: such a valid event was retried for ever."""
    with pytest.raises(InvalidEvent) as err:
        parse(ScoredEvent, _scored_chat(**changes))
    assert err.value.reason.startswith(f"{field}: ") and "NUL" in err.value.reason


def test_scored_event_keeps_nul_in_text_the_aggregator_replaces_it() -> None:
    e = parse(ScoredEvent, _scored_chat(text="a\x00b", source="s\x00"))
    assert e.text == "a\x00b"


@pytest.mark.parametrize("field", ["conversation_id", "queue", "intent", "reason", "sentiment"])
def test_routed_chat_refuses_nul_but_in_text(field: str) -> None:
    routed = {
        "id": "s-1",
        "conversation_id": "v-1",
        "event_time": "2026-01-02T03:04:05Z",
        "queue": "cards",
        "intent": "card_declined",
        "confidence": 0.9,
        "priority": False,
        "reason": "intent card_declined 0.90",
        "text": "lost \x00 my card",
        "sentiment": "neutral",
    }
    assert parse(RoutedChat, routed).text == "lost \x00 my card"
    with pytest.raises(InvalidEvent, match=f"^{field}: .*NUL"):
        parse(RoutedChat, routed | {field: f"x\x00{routed[field]}"})


@pytest.mark.parametrize(
    ("escaped", "decoded"),
    [
        ("ACME falls \\ud800 hard", "ACME falls \ufffd hard"),  # a lone high surrogate
        ("tail \\uDC00", "tail \ufffd"),  # a lone low one, upper case
        ("\\udbff\\udbff", "\ufffd\ufffd"),  # two highs are no pair
        ("a pair \\ud83d\\ude00 stays", "a pair \U0001f600 stays"),
        ("a backslash \\\\ud800 is text", "a backslash \\ud800 is text"),
    ],
)
def test_a_lone_surrogate_escape_decodes_to_the_replacement_character(escaped: str, decoded: str) -> None:
    """Valid JSON, but a lone surrogate is no text: the tokenizer raised on it and
    PostgreSQL refused it (22P02) after the event had been scored."""
    raw = b'{"id": "n-1", "stream": "news", "text": "' + escaped.encode() + b'", "k\\ud800": ["\\udfff"]}'
    data = decode_json(raw)
    assert data["text"] == decoded
    assert data["k\ufffd"] == ["\ufffd"]
    news = b'{"id": "n-1", "text": "' + escaped.encode() + b'"}'
    assert decode_raw(news, stream="news", topic="t", partition=0, offset=0, timestamp_ms=0).text == decoded
