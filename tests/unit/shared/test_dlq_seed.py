"""Reading the DLQ back (``DeadLetterWriter.seed_from``): the header parsing and the
fingerprint it relies on, and the writer's decisions around it (the reading itself is
replaced here; ``tests/integration/shared/kafka/test_dlq_seed.py`` reads a real DLQ)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from shared.config import KafkaSettings
from shared.kafka import dlq as dlq_mod
from shared.kafka.dlq import (
    DeadLetterWriter,
    FailedRecord,
    dlq_headers,
    fingerprint,
    original_timestamp,
    parse_dlq_headers,
    written_place,
)


def _rec(offset: int = 7, value: bytes = b"x", **kw: object) -> FailedRecord:
    return FailedRecord("news.raw", 1, offset, b"k", value, [], "JSONDecodeError", "bad", **kw)  # type: ignore[arg-type]


def test_a_dead_letters_headers_name_its_source_place_for_the_service_that_wrote_it() -> None:
    headers = dlq_headers(_rec(41), "aggregator", datetime(2026, 1, 1, tzinfo=UTC))
    assert written_place(headers, "aggregator") == ("news.raw", 1, 41)
    assert written_place(headers, "router") is None  # another service's dead letter: not ours to skip


def test_a_replayed_records_stale_tw_headers_do_not_name_the_place() -> None:
    """A replayed record carries the dead letter's ``tw.*`` of its first failure; its next
    dead letter names where it failed this time."""
    stale = [("tw.original_topic", b"other"), ("tw.partition", b"0"), ("tw.offset", b"3"), ("tw.service", b"x")]
    rec = FailedRecord("news.raw", 2, 90, None, b"x", [*stale, ("tw.replays", b"1")], "E", "bad")
    assert written_place(dlq_headers(rec, "classifier"), "classifier") == ("news.raw", 2, 90)


@pytest.mark.parametrize(
    "headers",
    [
        [],  # no metadata (a record put in the DLQ by hand)
        [("tw.service", b"aggregator"), ("tw.partition", b"1"), ("tw.offset", b"4")],  # no topic
        [("tw.service", b"aggregator"), ("tw.original_topic", b"t"), ("tw.offset", b"4")],  # no partition
        [("tw.service", b"aggregator"), ("tw.original_topic", b"t"), ("tw.partition", b"1")],  # no offset
        [("tw.service", b"aggregator"), ("tw.original_topic", b"t"), ("tw.partition", b"1"), ("tw.offset", b"x")],
        [("tw.service", b"aggregator"), ("tw.original_topic", b"t"), ("tw.partition", None), ("tw.offset", b"4")],
        [("tw.service", None), ("tw.original_topic", b"t"), ("tw.partition", b"1"), ("tw.offset", b"4")],
        [("tw.service", b"aggregator"), ("tw.original_topic", b"t"), ("tw.partition", b"-1"), ("tw.offset", b"4")],
        [("tw.service", b"aggregator"), ("tw.original_topic", b""), ("tw.partition", b"1"), ("tw.offset", b"4")],
        [("tw.service", b"aggregator"), ("tw.original_topic", b"\xff"), ("tw.partition", b"1"), ("tw.offset", b"4")],
    ],
)
def test_unreadable_metadata_names_no_place(headers: list[tuple[str, bytes | None]]) -> None:
    assert written_place(headers, "aggregator") is None  # type: ignore[arg-type]


def test_the_fingerprint_of_a_dead_letter_is_its_records() -> None:
    """The DLQ keeps the key, the value and, in ``tw.timestamp``, the original timestamp (a
    replayed record's own ``tw.timestamp``): read back, they give the record's fingerprint."""
    for rec in (
        _rec(timestamp_ms=1_700_000_000_000),
        _rec(),  # no timestamp known
        FailedRecord("news.raw", 0, 3, None, None, [("tw.timestamp", b"1234")], "E", "bad", timestamp_ms=9_999),
    ):
        headers = dlq_headers(rec, "classifier")
        assert fingerprint(rec.key, rec.value, dlq_mod._stamp(rec)) == fingerprint(
            rec.key, rec.value, original_timestamp(headers)
        )
    base = fingerprint(b"k", b"x", 5)
    assert len({base, fingerprint(b"k", b"y", 5), fingerprint(b"k", b"x", 6), fingerprint(None, b"x", 5)}) == 4
    assert fingerprint(None, b"", None) != fingerprint(b"", None, None) != fingerprint(None, None, None)
    assert fingerprint(b"ab", b"c", None) != fingerprint(b"a", b"bc", None)  # lengths delimit the parts


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []

    async def send_and_wait(self, topic: str, value: bytes | None = None, **_: object) -> None:
        self.sent.append((topic, value))


def _found(*recs: FailedRecord) -> list[tuple[int, tuple[str, int, int], bytes]]:
    return [
        (i, (r.topic, r.partition, r.offset), fingerprint(r.key, r.value, dlq_mod._stamp(r)))
        for i, r in enumerate(recs)
    ]


def _reading(
    monkeypatch: pytest.MonkeyPatch, found: list[tuple[int, tuple[str, int, int], bytes]], calls: list[str]
) -> None:
    async def read_back(
        self: DeadLetterWriter, settings: KafkaSettings, dlq: str, topic: str, out: list[object]
    ) -> None:
        calls.append(dlq)
        out.extend(found)

    monkeypatch.setattr(DeadLetterWriter, "_read_back", read_back)


async def test_a_record_found_in_the_dlq_is_not_written_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    _reading(monkeypatch, _found(_rec(7), _rec(8)), calls)
    producer = _Producer()
    writer = DeadLetterWriter(producer, "aggregator", seed_from=KafkaSettings())  # type: ignore[arg-type]
    assert [await writer.write(_rec(o)) for o in (7, 8, 9)] == [False, False, True]
    assert producer.sent == [("news.raw.dlq", b"x")]
    assert await writer.write(FailedRecord("news.raw", 2, 7, b"k", b"x", [], "E", "bad")) is True
    assert calls == ["news.raw.dlq", "news.raw.dlq"]  # once per source partition (partition 1, then 2)


async def test_another_record_at_a_place_found_in_the_dlq_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """A source topic deleted and created again reuses its offsets: a dead letter of the
    old record at that place does not stand for the new one."""
    _reading(monkeypatch, _found(_rec(7, b"old"), _rec(8, timestamp_ms=1)), [])
    producer = _Producer()
    writer = DeadLetterWriter(producer, "aggregator", seed_from=KafkaSettings())  # type: ignore[arg-type]
    assert await writer.write(_rec(7, b"new")) is True
    assert await writer.write(_rec(8, timestamp_ms=2)) is True
    assert producer.sent == [("news.raw.dlq", b"new"), ("news.raw.dlq", b"x")]


async def test_without_seed_settings_nothing_is_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    _reading(monkeypatch, _found(_rec(7)), calls)
    producer = _Producer()
    writer = DeadLetterWriter(producer, "aggregator")  # type: ignore[arg-type]
    assert await writer.write(_rec(7)) is True
    assert calls == []


async def test_a_failed_read_falls_back_to_writing_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """What was found before the failure is in the DLQ (skipped); the rest is written."""

    async def read_back(
        self: DeadLetterWriter, settings: KafkaSettings, dlq: str, topic: str, out: list[object]
    ) -> None:
        out.extend(_found(_rec(7)))
        raise OSError("connection refused")

    monkeypatch.setattr(DeadLetterWriter, "_read_back", read_back)
    producer = _Producer()
    writer = DeadLetterWriter(producer, "aggregator", seed_from=KafkaSettings())  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="shared.kafka.dlq"):
        assert [await writer.write(_rec(o)) for o in (7, 8)] == [False, True]
    assert "could not read news.raw.dlq back (OSError: connection refused; 1 dead letters found" in caplog.text
    assert "may be written again" in caplog.text


async def test_a_read_that_takes_too_long_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    released: list[bool] = []

    async def read_back(
        self: DeadLetterWriter, settings: KafkaSettings, dlq: str, topic: str, out: list[object]
    ) -> None:
        out.extend(_found(_rec(7)))
        try:
            await asyncio.sleep(60)
        finally:
            released.append(True)  # the consumer is stopped

    monkeypatch.setattr(DeadLetterWriter, "_read_back", read_back)
    monkeypatch.setattr(dlq_mod, "SEED_TIMEOUT_S", 0.05)
    producer = _Producer()
    writer = DeadLetterWriter(producer, "aggregator", seed_from=KafkaSettings())  # type: ignore[arg-type]
    async with asyncio.timeout(5):
        assert [await writer.write(_rec(o)) for o in (7, 8)] == [False, True]
    assert released == [True]


async def test_stopping_ends_the_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM while the DLQ is read back (a slow broker): the writer does not wait out
    :data:`SEED_TIMEOUT_S` to stop."""

    async def read_back(
        self: DeadLetterWriter, settings: KafkaSettings, dlq: str, topic: str, out: list[object]
    ) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(DeadLetterWriter, "_read_back", read_back)
    stop = asyncio.Event()
    producer = _Producer()
    writer = DeadLetterWriter(producer, "router", stop=stop, seed_from=KafkaSettings())  # type: ignore[arg-type]
    asyncio.get_running_loop().call_later(0.05, stop.set)
    async with asyncio.timeout(5):
        assert await writer.write(_rec(7)) is True


async def test_the_memory_stays_bounded_keeping_the_latest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dlq_mod, "WRITTEN_KEPT", 3)
    found = _found(*(_rec(o) for o in range(5)))
    _reading(monkeypatch, list(reversed(found)), [])  # read in any order: kept by time
    producer = _Producer()
    writer = DeadLetterWriter(producer, "aggregator", seed_from=KafkaSettings())  # type: ignore[arg-type]
    assert await writer.write(_rec(4)) is False
    assert len(writer._written) == 3
    assert [await writer.write(_rec(o)) for o in (3, 2, 1)] == [False, False, True]


def _replay_of(rec: FailedRecord, replays: int) -> FailedRecord:
    """``rec`` as ``tonewatch dlq replay`` sends it again (its key, value and original
    timestamp, a replay count), landed at the original's place (the topic created again)."""
    carried = [("tw.timestamp", str(rec.timestamp_ms).encode()), ("tw.replays", str(replays).encode())]
    return FailedRecord(
        rec.topic, rec.partition, rec.offset, rec.key, rec.value, carried, "E", "bad", timestamp_ms=9_999
    )


def test_the_fingerprint_tells_a_replay_from_its_original() -> None:
    original = _rec(3, timestamp_ms=1_000)
    replays = [_replay_of(original, n) for n in (1, 2)]
    for rec in (original, *replays):
        headers = dlq_headers(rec, "classifier")  # what the dead letter carries gives the record's
        assert dlq_mod.letter_mark(rec.key, rec.value, headers) == dlq_mod.record_mark(rec)
    assert len({dlq_mod.record_mark(r) for r in (original, *replays)}) == 3


async def test_a_failing_replay_at_its_originals_place_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """The original's dead letter, read back, does not stand for its replay: skipping the
    replay would lose it (its place is committed, its dead letter never written)."""
    original = _rec(3, timestamp_ms=1_000)
    _reading(monkeypatch, _found(original), [])
    producer = _Producer()
    writer = DeadLetterWriter(producer, "classifier", seed_from=KafkaSettings())  # type: ignore[arg-type]
    assert await writer.write(original) is False
    assert await writer.write(_replay_of(original, 1)) is True


def test_a_dead_letter_names_its_place_for_its_consumer_group_only() -> None:
    rec, now = _rec(41), datetime(2026, 1, 1, tzinfo=UTC)
    labelled = dlq_headers(rec, "classifier", now, group="tonewatch-classifier")
    assert ("tw.group", b"tonewatch-classifier") in labelled
    assert written_place(labelled, "classifier", "tonewatch-classifier") == ("news.raw", 1, 41)
    assert written_place(labelled, "classifier", "shadow") is None  # another group's: not ours to skip
    assert written_place(labelled, "classifier", "shadow", unlabelled=True) is None
    assert written_place(labelled, "classifier", None) is None  # a writer that does not know its group
    unlabelled = dlq_headers(rec, "classifier", now)  # written before tw.group: the default group's
    assert all(k != "tw.group" for k, _ in unlabelled)
    assert written_place(unlabelled, "classifier", "tonewatch-classifier", unlabelled=True) == ("news.raw", 1, 41)
    assert written_place(unlabelled, "classifier", "shadow", unlabelled=False) is None
    assert parse_dlq_headers(labelled) == parse_dlq_headers(unlabelled)  # not a DeadLetter field


async def test_what_is_read_back_does_not_push_out_what_the_writer_wrote(monkeypatch: pytest.MonkeyPatch) -> None:
    """A later read-back (another source partition) finds dead letters older than this
    writer's own: remembered before them, they are the first forgotten."""
    monkeypatch.setattr(dlq_mod, "WRITTEN_KEPT", 3)
    older = _found(*(FailedRecord("news.raw", 2, o, b"k", b"x", [], "E", "bad") for o in range(5)))
    reads = [[], older]

    async def read_back(
        self: DeadLetterWriter, settings: KafkaSettings, dlq: str, topic: str, out: list[object]
    ) -> None:
        out.extend(reads.pop(0))

    monkeypatch.setattr(DeadLetterWriter, "_read_back", read_back)
    producer = _Producer()
    writer = DeadLetterWriter(producer, "aggregator", seed_from=KafkaSettings())  # type: ignore[arg-type]
    assert [await writer.write(_rec(o)) for o in (7, 8, 9)] == [True] * 3  # partition 1: nothing found
    assert await writer.write(FailedRecord("news.raw", 2, 99, b"k", b"x", [], "E", "bad")) is True  # reads again
    assert reads == []
    assert [await writer.write(_rec(o)) for o in (8, 9)] == [False, False]  # still remembered


@pytest.mark.parametrize("fault", ["timeout", "error"])
async def test_a_dlq_that_could_not_be_read_is_not_read_again_for_other_partitions(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    """Each read of a slow DLQ would hold the batch up another SEED_TIMEOUT_S: 16 source
    partitions past max.poll.interval.ms, and the group loses the consumer. After one
    failed read of a DLQ the writer writes; another DLQ is still read."""
    calls: list[str] = []

    async def read_back(
        self: DeadLetterWriter, settings: KafkaSettings, dlq: str, topic: str, out: list[object]
    ) -> None:
        calls.append(dlq)
        if dlq == "chat.raw.dlq":
            return
        if fault == "error":
            raise OSError("connection refused")
        await asyncio.sleep(60)

    monkeypatch.setattr(DeadLetterWriter, "_read_back", read_back)
    monkeypatch.setattr(dlq_mod, "SEED_TIMEOUT_S", 0.05)
    producer = _Producer()
    writer = DeadLetterWriter(producer, "classifier", seed_from=KafkaSettings())  # type: ignore[arg-type]
    records = [FailedRecord("news.raw", p, 1, b"k", b"x", [], "E", "bad") for p in range(16)]
    records += [FailedRecord("chat.raw", p, 1, b"k", b"x", [], "E", "bad") for p in range(2)]
    with caplog.at_level(logging.WARNING, logger="shared.kafka.dlq"):
        async with asyncio.timeout(5):
            assert [await writer.write(r) for r in records] == [True] * 18
    assert calls == ["news.raw.dlq", "chat.raw.dlq", "chat.raw.dlq"]
    assert caplog.text.count("could not read news.raw.dlq back") == 1
    assert "not read again by this process" in caplog.text
