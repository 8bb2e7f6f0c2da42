"""Stage 1 (decode): every record ends up decoded or dead-lettered with a reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.classifier import decode
from shared.kafka.records import InRecord
from shared.topics import Topics

TOPICS = Topics()


def record(offset: int, value: bytes) -> InRecord:
    return InRecord(TOPICS.news_raw, 0, offset, None, value, [], 1_700_000_000_000)


def news(i: int) -> bytes:
    return json.dumps({"id": f"n-{i}", "text": f"headline {i}", "event_time": "2026-01-01T00:00:00Z"}).encode()


def test_contract_errors_are_dead_lettered_with_their_reason() -> None:
    late = b'{"id": "x", "text": "hi", "event_time": "0001-01-01T00:00:00+14:00"}'
    good, bad = decode.decode_batch([record(0, news(0)), record(1, late), record(2, news(2))], TOPICS)
    assert [d.event.id for d in good] == ["n-0", "n-2"]
    assert [(b.offset, b.error_class) for b in bad] == [(1, "ValidationError")]
    assert "event_time" in bad[0].reason and "out of range" in bad[0].reason


def test_an_unexpected_error_dead_letters_that_record_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real = decode.decode_raw

    def flaky(value: bytes | None, **kw: Any) -> Any:
        if value == b"boom":
            raise OverflowError("date value out of range")
        return real(value, **kw)

    monkeypatch.setattr(decode, "decode_raw", flaky)
    good, bad = decode.decode_batch([record(0, news(0)), record(1, b"boom"), record(2, news(2))], TOPICS)
    assert [d.event.id for d in good] == ["n-0", "n-2"]
    assert [(b.offset, b.error_class, b.value) for b in bad] == [(1, "OverflowError", b"boom")]
    assert bad[0].reason == "cannot decode: date value out of range"


def test_a_dead_letter_keeps_the_records_timestamp() -> None:
    """A replayed record without event_time is timed by its Kafka timestamp: the dead
    letter must carry the original one, not the time it was dead-lettered."""
    _, bad = decode.decode_batch([record(0, b"not json")], TOPICS)
    assert bad[0].timestamp_ms == 1_700_000_000_000


def test_a_replayed_record_without_event_time_keeps_its_original_minute() -> None:
    """A replay writes the record now, with its original timestamp in tw.timestamp: an
    event without event_time must be timed by that, not by the replay."""
    value = json.dumps({"id": "n-9", "text": "headline"}).encode()
    replayed = InRecord(TOPICS.news_raw, 0, 9, None, value, [("tw.timestamp", b"1600000000000")], 1_700_000_000_000)
    plain = InRecord(TOPICS.news_raw, 0, 10, None, value, [], 1_700_000_000_000)
    good, bad = decode.decode_batch([replayed, plain], TOPICS)
    assert bad == []
    assert [int(d.event.event_time.timestamp() * 1000) for d in good] == [1_600_000_000_000, 1_700_000_000_000]
