"""Dead-letter replays on the real broker: an id-less record keeps its id through replays
(``tw.origin``), a record over the replay limit can be sent by the command the replay
prints, and chunks are cut by size."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from services.classifier.decode import decode_batch, failed
from shared.config import KafkaSettings
from shared.events import position_id
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics, make_consumer, make_producer
from shared.kafka.dlq import DeadLetterWriter, FailedRecord, replay_count
from shared.kafka.records import InRecord
from shared.topics import Topics

pytestmark = pytest.mark.integration


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


async def test_an_id_less_record_keeps_its_first_position_id_through_every_replay(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    """news.raw[0]@7 without an id failed; a plain and an ``--error-class`` replay each sent
    it back (the lanes docstring: the ledger counts it once), at new offsets: each had a new
    position id, counted twice. Replayed, failing again and replayed again, it keeps the
    id of its first place."""
    topics = Topics(prefix=f"t{unique}.")
    topic = topics.news_raw
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=1)
    value = json.dumps({"text": "Acme shares fall after recall", "event_time": "2026-11-30T10:00:00Z"}).encode()
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        # the record is at news.raw[0]@7 (a replay lands after it: tw.origin counts only
        # an earlier offset of its partition)
        for i in range(8):
            await producer.send_and_wait(topic, value if i == 7 else b"{}", partition=0)
        writer = DeadLetterWriter(producer, "classifier")
        await writer.write(FailedRecord(topic, 0, 7, None, value, [], "MessageSizeTooLargeError", "refused"))
        assert await dlq_ops.replay(kafka_settings, topic) == 1
        size = dlq_ops.Selection(frozenset({"MessageSizeTooLargeError"}))
        assert await dlq_ops.replay(kafka_settings, topic, select=size) == 1
        first = [r for r in await _read_all(kafka_settings, topic, 10, f"g{unique}") if r.offset >= 8]
        assert [r.offset for r in first] == [8, 9]
        decoded, bad = decode_batch([InRecord.from_aiokafka(r) for r in first], topics)
        assert not bad
        assert [d.event.id for d in decoded] == [position_id(topic, 0, 7)] * 2
        # fails again (dead-lettered from its new place), is replayed again
        await writer.write(failed(decoded[1].record, "ClassificationError", "no verdict"))
        assert await dlq_ops.replay(kafka_settings, topic) == 1
    finally:
        await producer.stop()
    (third,) = [r for r in await _read_all(kafka_settings, topic, 11, f"g{unique}-2") if r.offset == 10]
    decoded, bad = decode_batch([InRecord.from_aiokafka(third)], topics)
    assert (replay_count(third.headers), decoded[0].event.id) == (2, position_id(topic, 0, 7))


async def test_a_record_over_the_replay_limit_is_sent_by_the_command_the_replay_prints(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    """The replay said "--force sends them", but it had committed past them: ``--force``
    sent nothing. It prints the command that sends them (``--force --at P@O``)."""
    topics = Topics(prefix=f"t{unique}.")
    topic = topics.news_raw
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=1)
    over = json.dumps({"id": "n1", "text": "Acme recalls cars"}).encode()
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        writer = DeadLetterWriter(producer, "classifier")
        await writer.write(FailedRecord(topic, 0, 3, None, over, [("tw.replays", b"3")], "ClassificationError", "x"))
        await writer.write(FailedRecord(topic, 0, 4, None, b"fine", [], "ClassificationError", "x"))
    finally:
        await producer.stop()

    plain = _cli(kafka_settings, "replay", "news.raw", prefix=topics.prefix)
    assert plain.returncode == 1, plain.stderr
    assert "re-injected 1 records" in plain.stdout
    command = f"tonewatch dlq replay {topic} --force --at 0@0"
    assert f"{command} sends them" in plain.stderr, plain.stderr
    assert "re-injected 0 records" in _cli(kafka_settings, "replay", "news.raw", "--force", prefix=topics.prefix).stdout
    unforced = _cli(kafka_settings, "replay", topic, "--at", "0@0", prefix=topics.prefix)
    assert unforced.returncode == 1 and "replayed 3 times already" in unforced.stderr, unforced.stderr
    sent = _cli(kafka_settings, *command.split()[2:], prefix=topics.prefix)
    assert sent.returncode == 0, sent.stderr
    assert "re-injected 1 records" in sent.stdout
    got = await _read_all(kafka_settings, topic, 2, f"g{unique}")
    assert [(r.value, replay_count(r.headers)) for r in got] == [(b"fine", 1), (over, 4)]
    missing = _cli(kafka_settings, "replay", topic, "--at", "0@9", "--at", "3@0", prefix=topics.prefix)
    assert missing.returncode == 1 and "not in" in missing.stderr and "NotFound" in missing.stderr
    for bad in (["--at", "0:1"], ["--at", "-1@0"], ["--at", "0@0", "--error-class", "E"]):
        refused = _cli(kafka_settings, "replay", topic, *bad, prefix=topics.prefix)
        assert refused.returncode == 2, (bad, refused.stderr)


async def test_replay_chunks_are_cut_by_bytes(
    kafka_settings: KafkaSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 dead letters of 2 MiB made one 2 GB chunk: a chunk is also cut by size (a
    record larger than the cap goes alone), and what was fetched past the cut is sent in
    the next chunk: each record once."""
    topic = f"t{unique}.news.raw"
    await ensure_topics(kafka_settings, [topic], partitions=1)
    await ensure_topics(kafka_settings, [Topics.dlq(topic)], partitions=2)
    sizes = [100_000] * 5 + [300_000] + [100_000] * 6
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        writer = DeadLetterWriter(producer, "classifier")
        for i, n in enumerate(sizes):
            value = f"r{i:02d}".encode().ljust(n, b".")
            await writer.write(FailedRecord(topic, 0, i, f"k{i}".encode(), value, [], "E", "bad"))
    finally:
        await producer.stop()
    monkeypatch.setattr(dlq_ops, "REPLAY_CHUNK_BYTES", 250_000, raising=False)
    chunks: list[list[int]] = []
    real = dlq_ops._Replayer.send_chunk

    async def send_chunk(self: Any, entries: list[dlq_ops.DlqEntry]) -> list[dlq_ops.ReplayFailure]:
        chunks.append([len(e.value or b"") + len(e.key or b"") for e in entries])
        return await real(self, entries)

    monkeypatch.setattr(dlq_ops._Replayer, "send_chunk", send_chunk)
    assert await dlq_ops.replay(kafka_settings, topic) == len(sizes)
    assert all(sum(c) <= 250_000 or len(c) == 1 for c in chunks), chunks
    assert sum(len(c) for c in chunks) == len(sizes)
    got = await _read_all(kafka_settings, topic, len(sizes), f"g{unique}")
    assert sorted((r.value or b"")[:3] for r in got) == [f"r{i:02d}".encode() for i in range(len(sizes))]
