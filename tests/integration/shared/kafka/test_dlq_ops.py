"""`tonewatch dlq list|replay` on the real broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from shared.config import KafkaSettings
from shared.events import decode_raw
from shared.kafka import dlq_ops
from shared.kafka.clients import DLQ_MAX_MESSAGE_BYTES, ensure_topics, make_consumer, make_producer
from shared.kafka.dlq import DeadLetterWriter, FailedRecord, dlq_headers
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
                    topic, 0, i, b"k", f"bad-{i}".encode(), [("trace", b"t1")], "JSONDecodeError", f"malformed JSON {i}"
                )
            )
    finally:
        await producer.stop()

    entries = await dlq_ops.list_entries(kafka_settings, topic)
    assert [(e.value, e.meta.reason if e.meta else None) for e in entries] == [
        (f"bad-{i}".encode(), f"malformed JSON {i}") for i in range(3)
    ]

    cli = subprocess.run(
        [sys.executable, "-m", "services", "dlq", "list", topic],
        capture_output=True,
        text=True,
        env={"TW_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers, "PATH": ""},
        timeout=60,
    )
    assert cli.returncode == 0 and "JSONDecodeError: malformed JSON 1" in cli.stdout

    assert await dlq_ops.replay(kafka_settings, topic) == 3
    assert await dlq_ops.replay(kafka_settings, topic) == 0  # progress was committed
    consumer = make_consumer(kafka_settings, topic, group_id=f"g{unique}", client_id="test")
    await consumer.start()
    try:
        got = []
        async with asyncio.timeout(30):
            while len(got) < 3:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got += [(r.value, list(r.headers)) for r in records]
    finally:
        await consumer.stop()
    assert got == [(f"bad-{i}".encode(), [("trace", b"t1")]) for i in range(3)]  # original bytes and headers


async def test_replay_goes_chunk_by_chunk_committing_each(
    kafka_settings: KafkaSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"t{unique}.news.raw"
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=1)
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    writer = DeadLetterWriter(producer, "classifier")

    async def dead_letter(i: int) -> None:
        await writer.write(FailedRecord(topic, 0, i, b"k", f"bad-{i}".encode(), [], "JSONDecodeError", "malformed"))

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


def _cli(kafka_settings: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", "dlq", *args],
        capture_output=True,
        text=True,
        env={"TW_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers, "PATH": ""},
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
            await writer.write(FailedRecord(topic, 0, i, b"k", value, [], "JSONDecodeError", "malformed"))
    finally:
        await producer.stop()

    cli = _cli(kafka_settings, "replay", topic)
    assert cli.returncode == 1, cli.stderr
    assert "re-injected 2 records" in cli.stdout
    assert f"{Topics.dlq(topic)}[0]@1 (from {topic}[0]@1): MessageSizeTooLargeError" in cli.stderr
    assert "Traceback" not in cli.stderr
    again = await dlq_ops.replay_report(kafka_settings, topic)
    assert (again.replayed, again.failed) == (0, [])  # committed past it: not retried
    listed = _cli(kafka_settings, "list", topic)
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
    """A raw event without ``event_time`` takes it from the record's timestamp: after a
    replay it must still be the original's (or, for a dead letter written before
    ``tw.timestamp``, the dead letter's), not the replay's."""
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

    assert await dlq_ops.replay(kafka_settings, topic) == 2
    got = await _read_all(kafka_settings, topic, 2, f"g{unique}")
    assert [r.timestamp for r in got] == [original, older]
    event = decode_raw(got[0].value, stream="news", topic=topic, partition=0, offset=0, timestamp_ms=got[0].timestamp)
    assert event.event_time == datetime.fromtimestamp(original / 1000, tz=UTC)
