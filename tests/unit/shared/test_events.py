from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.events import (
    ALL_CONTRACTS,
    InvalidEvent,
    RawChat,
    RawNews,
    Score,
    ScoredEvent,
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
        ({"id": "a b", "event_time": "2026-01-01T00:00:00Z", "text": "x"}, "id"),
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
