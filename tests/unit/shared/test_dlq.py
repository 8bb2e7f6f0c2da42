from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from aiokafka.errors import InvalidTimestampError, KafkaTimeoutError, MessageSizeTooLargeError, NodeNotReadyError

from shared.kafka.dlq import (
    DeadLetterRatioExceeded,
    DeadLetterWriter,
    FailedRecord,
    RatioGuard,
    dlq_headers,
    original_headers,
    original_timestamp,
    parse_dlq_headers,
    replay_count,
)


def test_headers_round_trip_and_keep_originals() -> None:
    rec = FailedRecord("news.raw", 2, 41, b"k", b"{bad", [("trace", b"abc")], "JSONDecodeError", "malformed JSON")
    headers = dlq_headers(rec, "classifier", datetime(2026, 1, 1, tzinfo=UTC))
    meta = parse_dlq_headers(headers)
    assert (meta.original_topic, meta.partition, meta.offset) == ("news.raw", 2, 41)
    assert (meta.error_class, meta.reason, meta.service) == ("JSONDecodeError", "malformed JSON", "classifier")
    assert original_headers(headers) == [("trace", b"abc")]


def test_ratio_guard_trips_only_past_the_limit() -> None:
    guard = RatioGuard(max_ratio=0.5, window=100, min_records=10)
    small = RatioGuard(max_ratio=0.5, window=100, min_records=10)
    for _ in range(9):
        small.record(failed=True)  # 100% failed, but too few records to judge: no stop
    for _ in range(40):
        guard.record(failed=False)
    failures = 0
    with pytest.raises(DeadLetterRatioExceeded, match="dead-lettered"):
        for _ in range(100):
            failures += 1
            guard.record(failed=True)
    assert failures == 41  # 41 / 81 > 0.5, while 40 / 80 is not


class _FlakyProducer:
    """Fails the first sends with ``errors``, then acknowledges."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.sent: list[tuple[str, bytes | None]] = []

    async def send_and_wait(self, topic: str, value: bytes | None = None, **_: object) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((topic, value))


def _failed() -> FailedRecord:
    return FailedRecord("news.raw", 0, 7, None, b"x", [], "JSONDecodeError", "bad")


async def test_a_dead_letter_is_retried_through_a_broker_fault() -> None:
    producer = _FlakyProducer([NodeNotReadyError("down"), KafkaTimeoutError()])
    writer = DeadLetterWriter(producer, "classifier")  # type: ignore[arg-type]
    await writer.write(_failed(), max_backoff_s=0.01)
    assert producer.sent == [("news.raw.dlq", b"x")]


async def test_a_dead_letter_the_broker_refuses_for_good_is_raised() -> None:
    producer = _FlakyProducer([MessageSizeTooLargeError("too big")])
    writer = DeadLetterWriter(producer, "classifier")  # type: ignore[arg-type]
    with pytest.raises(MessageSizeTooLargeError):
        await writer.write(_failed())
    assert producer.sent == []


async def test_a_dead_letter_retried_through_an_outage_gives_up_once_stopping() -> None:
    """SIGTERM during a long broker outage: the writer stops retrying (the batch stays
    uncommitted and is re-read), instead of holding the service up until the broker returns."""
    stop = asyncio.Event()
    producer = _FlakyProducer([KafkaTimeoutError() for _ in range(1000)])
    writer = DeadLetterWriter(producer, "router", stop=stop)  # type: ignore[arg-type]
    asyncio.get_running_loop().call_later(0.05, stop.set)
    with pytest.raises(KafkaTimeoutError):
        await asyncio.wait_for(writer.write(_failed(), max_backoff_s=5.0), timeout=2)
    assert producer.sent == []


async def test_a_record_asked_again_is_written_once() -> None:
    producer = _FlakyProducer([])
    writer = DeadLetterWriter(producer, "aggregator")  # type: ignore[arg-type]
    assert await writer.write(_failed()) is True
    assert await writer.write(_failed()) is False  # the same batch, retried through an outage
    assert producer.sent == [("news.raw.dlq", b"x")]


def test_headers_keep_the_original_timestamp() -> None:
    rec = FailedRecord("news.raw", 0, 7, None, b"x", [("trace", b"abc")], "JSONDecodeError", "bad", timestamp_ms=1_234)
    headers = dlq_headers(rec, "classifier", datetime(2026, 1, 1, tzinfo=UTC))
    assert original_timestamp(headers) == 1_234
    assert parse_dlq_headers(headers).offset == 7  # the extra header is not a DeadLetter field
    assert original_headers(headers) == [("trace", b"abc")]
    assert original_timestamp(dlq_headers(_failed(), "classifier")) is None  # none known


class _StampingProducer:
    """Records each send's timestamp and headers; refuses the first ``refuse`` timestamps given."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.sent: list[int | None] = []
        self.headers: list[object] = []

    async def send_and_wait(self, topic: str, value: bytes | None = None, **kw: object) -> None:
        ts = kw.get("timestamp_ms")
        assert ts is None or isinstance(ts, int)
        if ts is not None and self.refuse:
            self.refuse -= 1
            raise InvalidTimestampError()
        self.sent.append(ts)
        self.headers.append(kw.get("headers"))


async def test_a_dead_letter_is_written_now_with_the_original_records_timestamp_in_a_header() -> None:
    """A DLQ topic deletes by record timestamp: with a backfill's (30 days old) the broker
    deleted the dead letter at its next retention check while the original's offset was
    committed. Replay gives the record ``tw.timestamp`` back: a raw event without
    ``event_time`` takes its time from it, so it must be the original's."""
    producer = _StampingProducer()
    writer = DeadLetterWriter(producer, "classifier")  # type: ignore[arg-type]
    await writer.write(FailedRecord("news.raw", 0, 8, None, b"x", [], "E", "bad", timestamp_ms=1_700_000_000_000))
    assert producer.sent == [None]  # the current time
    assert original_timestamp(producer.headers[0]) == 1_700_000_000_000  # type: ignore[arg-type]


def test_a_replayed_records_dead_letter_keeps_its_replay_count_and_original_timestamp() -> None:
    """A replayed record carries ``tw.replays`` and ``tw.timestamp`` (its own Kafka timestamp
    is the replay's): failing again, its dead letter keeps both, so the next replay knows
    how often it was sent and when it was first produced."""
    replayed = [("trace", b"abc"), ("tw.timestamp", b"1234"), ("tw.replays", b"2"), ("tw.reason", b"old")]
    rec = FailedRecord("news.raw", 0, 9, None, b"x", replayed, "ValidationError", "bad", timestamp_ms=9_999)
    headers = dlq_headers(rec, "classifier", datetime(2026, 1, 1, tzinfo=UTC))
    assert (original_timestamp(headers), replay_count(headers)) == (1_234, 2)
    assert parse_dlq_headers(headers).reason == "bad"  # the new reason; the count is no DeadLetter field
    assert original_headers(headers) == [("trace", b"abc")]
    assert replay_count(dlq_headers(_failed(), "classifier")) == 0  # never replayed
    assert replay_count([("tw.replays", None)]) == replay_count([("tw.replays", b"x")]) == 0  # type: ignore[list-item]


async def test_a_timestamp_the_dlq_refuses_falls_back_to_the_current_time() -> None:
    producer = _StampingProducer(refuse=1)
    writer = DeadLetterWriter(producer, "classifier")  # type: ignore[arg-type]
    assert await writer.write(FailedRecord("news.raw", 0, 9, None, b"x", [], "E", "bad", timestamp_ms=5))
    assert producer.sent == [None]  # tw.timestamp still carries the original
