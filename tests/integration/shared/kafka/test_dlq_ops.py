"""`tonewatch dlq list|replay` on the real broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from services.classifier.decode import decode_batch
from shared.config import KafkaSettings
from shared.events import decode_raw
from shared.kafka import dlq_ops
from shared.kafka.clients import DLQ_MAX_MESSAGE_BYTES, ensure_topics, make_consumer, make_producer
from shared.kafka.dlq import (
    DeadLetterWriter,
    FailedRecord,
    dlq_headers,
    original_headers,
    original_timestamp,
    replay_count,
)
from shared.kafka.records import InRecord
from shared.topics import Topics

pytestmark = pytest.mark.integration


async def test_list_and_replay_once(kafka_settings: KafkaSettings, unique: str) -> None:
    topic = f"t{unique}.news.raw"
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=1)
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        writer = DeadLetterWriter(producer, "classifier")
        for i in range(3):
            await writer.write(
                FailedRecord(
                    topic, 0, i, b"k", f"bad-{i}".encode(), [("trace", b"t1")], "ClassificationError", f"no verdict {i}"
                )
            )
    finally:
        await producer.stop()

    entries = await dlq_ops.list_entries(kafka_settings, topic)
    assert [(e.value, e.meta.reason if e.meta else None) for e in entries] == [
        (f"bad-{i}".encode(), f"no verdict {i}") for i in range(3)
    ]

    cli = _cli(kafka_settings, "list", topic, prefix=f"t{unique}.")
    assert cli.returncode == 0 and "ClassificationError: no verdict 1" in cli.stdout

    assert await dlq_ops.replay(kafka_settings, topic) == 3
    assert await dlq_ops.replay(kafka_settings, topic) == 0  # progress was committed
    consumer = make_consumer(kafka_settings, topic, group_id=f"g{unique}", client_id="test")
    await consumer.start()
    try:
        got: list[tuple[bytes | None, list[tuple[str, bytes]], int]] = []
        async with asyncio.timeout(30):
            while len(got) < 3:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got += [(r.value, original_headers(r.headers), replay_count(r.headers)) for r in records]
    finally:
        await consumer.stop()
    assert got == [(f"bad-{i}".encode(), [("trace", b"t1")], 1) for i in range(3)]  # original bytes and headers


async def test_replay_goes_chunk_by_chunk_committing_each(
    kafka_settings: KafkaSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"t{unique}.news.raw"
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=1)
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    writer = DeadLetterWriter(producer, "classifier")

    async def dead_letter(i: int) -> None:
        await writer.write(FailedRecord(topic, 0, i, b"k", f"bad-{i}".encode(), [], "ClassificationError", "bad"))

    try:
        for i in range(5):
            await dead_letter(i)
        monkeypatch.setattr(dlq_ops, "REPLAY_CHUNK", 2)
        commits: list[int] = []
        real_commit = AIOKafkaConsumer.commit

        async def commit(self: AIOKafkaConsumer, *args: Any, **kwargs: Any) -> None:
            commits.append(1)
            await real_commit(self, *args, **kwargs)

        monkeypatch.setattr(AIOKafkaConsumer, "commit", commit)
        assert await dlq_ops.replay(kafka_settings, topic, limit=4) == 4  # chunks of 2, 2
        assert len(commits) == 2  # progress committed after each chunk
        await dead_letter(5)  # arrives after the first replay
        assert await dlq_ops.replay(kafka_settings, topic) == 2  # the 5th, and the new one
        assert await dlq_ops.replay(kafka_settings, topic) == 0
    finally:
        await producer.stop()
    consumer = make_consumer(kafka_settings, topic, group_id=f"g{unique}", client_id="test")
    await consumer.start()
    try:
        got: list[bytes | None] = []
        async with asyncio.timeout(30):
            while len(got) < 6:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got += [r.value for r in records]
        got += [r.value for records in (await consumer.getmany(timeout_ms=1000)).values() for r in records]
    finally:
        await consumer.stop()
    assert got == [f"bad-{i}".encode() for i in range(6)]  # each once, in order


def _cli(kafka_settings: KafkaSettings, *args: str, prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", "dlq", *args],
        capture_output=True,
        text=True,
        env={"TW_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers, "TW_TOPICS__PREFIX": prefix, "PATH": ""},
        timeout=60,
    )


async def _read_all(kafka_settings: KafkaSettings, topic: str, n: int, group: str) -> list[ConsumerRecord[Any, Any]]:
    """The first ``n`` records of ``topic``, then whatever else comes within a second."""
    consumer = make_consumer(kafka_settings, topic, group_id=group, client_id="test")
    await consumer.start()
    try:
        got: list[ConsumerRecord[Any, Any]] = []
        async with asyncio.timeout(30):
            while len(got) < n:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got += records
        got += [r for records in (await consumer.getmany(timeout_ms=1000)).values() for r in records]
    finally:
        await consumer.stop()
    return got


async def test_a_record_the_topic_refuses_is_reported_and_the_rest_replayed_once(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    """small-0, a 1.5 MB record, small-2; the topic takes 1 MiB: the big one is reported
    with its DLQ place (exit 1), the others go back once each, and the replay moves on."""
    topic = f"t{unique}.news.raw"
    await ensure_topics(kafka_settings, [topic], partitions=1, configs={"max.message.bytes": str(1024 * 1024)})
    await ensure_topics(
        kafka_settings, [Topics.dlq(topic)], partitions=1, configs={"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)}
    )
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        writer = DeadLetterWriter(producer, "classifier")
        for i, value in enumerate([b"small-0", b"x" * 1_500_000, b"small-2"]):
            await writer.write(FailedRecord(topic, 0, i, b"k", value, [], "ClassificationError", "bad"))
    finally:
        await producer.stop()

    cli = _cli(kafka_settings, "replay", topic, prefix=f"t{unique}.")
    assert cli.returncode == 1, cli.stderr
    assert "re-injected 2 records" in cli.stdout
    assert f"{Topics.dlq(topic)}[0]@1 (from {topic}[0]@1): MessageSizeTooLargeError" in cli.stderr
    assert "Traceback" not in cli.stderr
    again = await dlq_ops.replay_report(kafka_settings, topic)
    assert (again.replayed, again.failed) == (0, [])  # committed past it: not retried
    listed = _cli(kafka_settings, "list", topic, prefix=f"t{unique}.")
    assert listed.returncode == 0 and f"{Topics.dlq(topic)}[0]@1  {topic}[0]@1" in listed.stdout  # still there

    got = await _read_all(kafka_settings, topic, 2, f"g{unique}")
    assert [r.value for r in got] == [b"small-0", b"small-2"]  # each once, in order


async def test_dead_letters_arriving_during_a_replay_are_left_for_the_next(
    kafka_settings: KafkaSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only what was in the DLQ when the replay started is replayed: 2 partitions, 42 dead
    letters, and a new one after each commit. (200 kB each, so that the consumer does not
    fetch all before the first commit, as with small ones.)"""
    topic = f"t{unique}.news.raw"
    await ensure_topics(kafka_settings, [topic], partitions=1)
    await ensure_topics(kafka_settings, [Topics.dlq(topic)], partitions=2)
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    writer = DeadLetterWriter(producer, "classifier")
    written = 0

    async def dead_letter(value: bytes) -> None:
        nonlocal written
        padded = value + b"." * 200_000
        await writer.write(FailedRecord(topic, 0, written, f"k{written}".encode(), padded, [], "E", "bad"))
        written += 1

    try:
        for i in range(42):
            await dead_letter(f"bad-{i}".encode())
        monkeypatch.setattr(dlq_ops, "REPLAY_CHUNK", 10)
        arrived: list[bytes] = []
        real_commit = AIOKafkaConsumer.commit

        async def commit(self: AIOKafkaConsumer, *args: Any, **kwargs: Any) -> None:
            await real_commit(self, *args, **kwargs)
            arrived.append(f"new-{len(arrived)}".encode())
            await dead_letter(arrived[-1])

        monkeypatch.setattr(AIOKafkaConsumer, "commit", commit)
        assert await dlq_ops.replay(kafka_settings, topic) == 42
        monkeypatch.setattr(AIOKafkaConsumer, "commit", real_commit)
        assert arrived
        assert await dlq_ops.replay(kafka_settings, topic) == len(arrived)  # left for the next, not lost
    finally:
        await producer.stop()
    got = await _read_all(kafka_settings, topic, 42 + len(arrived), f"g{unique}")
    names = sorted((r.value or b"").rstrip(b".") for r in got)
    assert names == sorted([f"bad-{i}".encode() for i in range(42)] + arrived)  # each once


async def test_a_replayed_record_has_its_original_timestamp(kafka_settings: KafkaSettings, unique: str) -> None:
    """A raw event without ``event_time`` takes it from the record's original timestamp:
    after a replay it must still be the original's (or, for a dead letter written before
    ``tw.timestamp``, the dead letter's), not the replay's. It travels in ``tw.timestamp``:
    the replayed record is written with the current time (an old one, a backfill's, may
    be past the topic's retention, and the broker deletes the record before it is read)."""
    topic = f"t{unique}.news.raw"
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=1)
    original = 1_700_000_000_000 + 30_500  # 2023-11-14T22:14:20.5Z
    older = original + 45_000
    value = json.dumps({"text": "no event time"}).encode()
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        writer = DeadLetterWriter(producer, "classifier")
        await writer.write(FailedRecord(topic, 0, 0, b"k", value, [], "E", "bad", timestamp_ms=original))
        # one written before the writer kept the timestamp: only its own (the dead-lettering time)
        headers = dlq_headers(FailedRecord(topic, 0, 1, b"k", value, [], "E", "bad"), "classifier")
        await producer.send_and_wait(Topics.dlq(topic), value, key=b"k", headers=headers, timestamp_ms=older)
    finally:
        await producer.stop()

    replayed_at = _now_ms()
    assert await dlq_ops.replay(kafka_settings, topic) == 2
    got = await _read_all(kafka_settings, topic, 2, f"g{unique}")
    assert all(replayed_at - 5_000 <= r.timestamp <= _now_ms() for r in got)
    assert [original_timestamp(r.headers) for r in got] == [original, older]
    event = decode_raw(
        got[0].value, stream="news", topic=topic, partition=0, offset=0, timestamp_ms=original_timestamp(got[0].headers)
    )
    assert event.event_time == datetime.fromtimestamp(original / 1000, tz=UTC)


def _now_ms() -> int:
    return int(time.time() * 1000)


async def test_a_dead_letter_of_an_old_record_is_written_with_the_current_time(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    """A backfill stamps event time: a dead letter 30 days old was past the DLQ's 7-day
    retention when written, and the broker deleted it at its next retention check (the
    original's offset committed: the record lost everywhere). It is written now, the
    original time kept in ``tw.timestamp``."""
    topic = f"t{unique}.news.raw"
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=1)
    old = _now_ms() - 30 * 86_400_000
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        written_at = _now_ms()
        await DeadLetterWriter(producer, "classifier").write(
            FailedRecord(topic, 0, 7, b"k", b'{"text": "x"}', [], "ClassificationError", "bad", timestamp_ms=old)
        )
    finally:
        await producer.stop()
    (dead,) = await _read_all(kafka_settings, Topics.dlq(topic), 1, f"g{unique}-dlq")
    assert written_at - 5_000 <= dead.timestamp <= _now_ms()
    assert original_timestamp(dead.headers) == old
    (entry,) = await dlq_ops.list_entries(kafka_settings, topic)
    assert entry.timestamp_ms == old


async def test_a_plain_replay_leaves_records_that_fail_again_and_a_named_class_replays_them(
    kafka_settings: KafkaSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Malformed or invalid records only come back: sent back in a burst they stopped the
    classifier (its ratio guard) and doubled the DLQ. A plain replay leaves them, counted;
    naming their class replays them, each class from its own position, so the plain
    replay that passed over them did not make them unreachable."""
    monkeypatch.setattr(dlq_ops, "REPLAY_GROUP", f"t{unique}-replay")
    topic = f"t{unique}.news.raw"
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=1)
    classes = ["ClassificationError", "ValidationError", "JSONDecodeError", "ValidationError", "ClassificationError"]
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        writer = DeadLetterWriter(producer, "classifier")
        for i, cls in enumerate(classes):
            await writer.write(FailedRecord(topic, 0, i, b"k", f"{cls}-{i}".encode(), [], cls, "bad"))
    finally:
        await producer.stop()

    plain = await dlq_ops.replay_report(kafka_settings, topic)
    assert (plain.replayed, plain.left) == (2, {"ValidationError": 2, "JSONDecodeError": 1})
    again = await dlq_ops.replay_report(kafka_settings, topic)
    assert (again.replayed, again.left) == (0, {})
    invalid = dlq_ops.Selection(frozenset({"ValidationError"}))
    assert await dlq_ops.replay(kafka_settings, topic, select=invalid) == 2
    assert await dlq_ops.replay(kafka_settings, topic, select=invalid) == 0
    got = await _read_all(kafka_settings, topic, 4, f"g{unique}")
    assert sorted(r.value for r in got) == [
        b"ClassificationError-0",
        b"ClassificationError-4",
        b"ValidationError-1",
        b"ValidationError-3",
    ]  # each once, and the malformed one left in the DLQ


async def _next(consumer: AIOKafkaConsumer, n: int) -> list[ConsumerRecord[Any, Any]]:
    got: list[ConsumerRecord[Any, Any]] = []
    async with asyncio.timeout(30):
        while len(got) < n:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got += records
    return got


async def test_a_record_that_keeps_failing_is_replayed_max_replays_times_then_refused(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    """Each replayed record carries ``tw.replays``; failing again in the classifier's decoding,
    its dead letter keeps it (and the original time); the fourth replay refuses it
    (exit 1, listed) and the record stays in the DLQ."""
    topics = Topics(prefix=f"t{unique}.")
    topic = topics.news_raw
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=1)
    old = _now_ms() - 30 * 86_400_000
    invalid = dlq_ops.Selection(frozenset({"ValidationError"}))
    producer = make_producer(kafka_settings, client_id="test")
    consumer = make_consumer(kafka_settings, topic, group_id=f"g{unique}", client_id="test")  # the classifier
    await producer.start()
    await consumer.start()
    try:
        writer = DeadLetterWriter(producer, "classifier")
        value = json.dumps({"text": "x", "event_time": "yesterday"}).encode()
        await writer.write(FailedRecord(topic, 0, 1_000, b"k", value, [], "ValidationError", "bad", timestamp_ms=old))
        for n in (1, 2, 3):
            assert await dlq_ops.replay(kafka_settings, topic, select=invalid) == 1
            (record,) = await _next(consumer, 1)
            assert (replay_count(record.headers), original_timestamp(record.headers)) == (n, old)
            _, bad = decode_batch([InRecord.from_aiokafka(record)], topics)
            assert await writer.write(bad[0])
    finally:
        await consumer.stop()
        await producer.stop()

    cli = _cli(kafka_settings, "replay", "news.raw", "--error-class", "ValidationError", prefix=topics.prefix)
    assert cli.returncode == 1, cli.stderr
    assert "re-injected 0 records" in cli.stdout
    assert (
        f"not replayed: {Topics.dlq(topic)}[0]@3 (from {topic}[0]@2): ValidationError: replayed 3 times" in cli.stderr
    )
    entries = await dlq_ops.list_entries(kafka_settings, topic)
    assert [(e.replays, e.timestamp_ms) for e in entries] == [(0, old), (1, old), (2, old), (3, old)]


RAW = (
    b'{"id": "jane.doe@example.com", "text": "call me on +1 415 555 2671 or jane.doe@example.com, '
    b'card 4111 1111 1111 1111", "event_time": "yesterday"}'
)


async def test_the_cli_reads_this_environments_dlq_and_lists_no_personal_data(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    """Under ``TW_TOPICS__PREFIX``, ``news.raw`` (or the prefixed name) is this environment's;
    another environment's is refused, not read or replayed into. Dead letters keep the raw
    record; the listing shows it redacted."""
    mine, other = Topics(prefix=f"t{unique}a."), Topics(prefix=f"t{unique}b.")
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        for t in (mine, other):
            await ensure_topics(kafka_settings, [t.news_raw, Topics.dlq(t.news_raw)], partitions=1)
            await DeadLetterWriter(producer, "classifier").write(
                FailedRecord(t.news_raw, 0, 7, b"jane.doe@example.com", RAW, [], "ValidationError", "event_time: bad")
            )
    finally:
        await producer.stop()

    as_json = _cli(kafka_settings, "list", "news.raw", "--json", prefix=mine.prefix)
    assert as_json.returncode == 0, as_json.stderr
    assert [e["meta"]["original_topic"] for e in json.loads(as_json.stdout)] == [mine.news_raw]
    text = _cli(kafka_settings, "list", mine.news_raw, prefix=mine.prefix)
    assert text.returncode == 0 and f"{Topics.dlq(mine.news_raw)}[0]@0  {mine.news_raw}[0]@7" in text.stdout
    for out in (as_json.stdout, text.stdout):
        assert not [raw for raw in ("jane.doe", "example.com", "415 555", "2671", "4111") if raw in out]
    refused = _cli(kafka_settings, "replay", other.news_raw, prefix=mine.prefix)
    assert refused.returncode == 2 and "no topic of this environment" in " ".join(
        refused.stderr.replace("│", " ").split()
    )
    assert len(await dlq_ops.list_entries(kafka_settings, other.news_raw)) == 1


async def test_the_listing_redacts_personal_data_the_raw_json_writes_as_escapes(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    """A dead letter keeps the record's raw bytes, and JSON may escape any character:
    ``dlq list --json`` showed "jane\\u0040example.com" and the escaped digits and
    no-break spaces of a phone number as they were."""
    topics = Topics(prefix=f"t{unique}.")
    raw = (
        b'{"id": "e1", "text": "call \\u0034\\u0031\\u0035\\u00a0555\\u00a02671 or jane\\u0040example.com,'
        b' caf\\u00e9 \\u2013 card 4111\\u00a01111\\u00a01111\\u00a01111"}'
    )
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        await ensure_topics(kafka_settings, [topics.news_raw, Topics.dlq(topics.news_raw)], partitions=1)
        await DeadLetterWriter(producer, "classifier").write(
            FailedRecord(topics.news_raw, 0, 3, None, raw, [], "ValidationError", "event_time: missing")
        )
    finally:
        await producer.stop()

    listed = _cli(kafka_settings, "list", "news.raw", "--json", prefix=topics.prefix)
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)
    preview = entry["value_preview"]
    assert preview.startswith('{"id": "e1", "text": "call [PHONE] or [EMAIL],'), preview
    assert "[CARD]" in preview, preview
    assert not [raw for raw in ("2671", "u0040", "jane", "example.com", "4111", "1111") if raw in preview], preview
