"""`tonewatch dlq list|replay` on the real broker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from shared.config import KafkaSettings
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics, make_consumer, make_producer
from shared.kafka.dlq import DeadLetterWriter, FailedRecord
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
