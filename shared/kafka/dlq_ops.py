"""Inspect and re-inject dead letters (``tonewatch dlq``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.config import KafkaSettings
from shared.events import DeadLetter
from shared.kafka.clients import make_consumer, make_producer
from shared.kafka.dlq import original_headers, parse_dlq_headers
from shared.topics import Topics

REPLAY_GROUP = "tonewatch-dlq-replay"
REPLAY_CHUNK = 1_000


@dataclass(frozen=True)
class DlqEntry:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    meta: DeadLetter | None
    headers: list[tuple[str, bytes]]


async def _drain(
    consumer: AIOKafkaConsumer, limit: int, end: dict[TopicPartition, int] | None = None
) -> list[DlqEntry]:
    """Up to ``limit`` entries, stopping at ``end`` (default: the partitions' current ends)."""
    out: list[DlqEntry] = []
    end = end or await consumer.end_offsets(list(consumer.assignment()))
    while len(out) < limit:
        done = True
        for tp in consumer.assignment():
            if await consumer.position(tp) < end[tp]:
                done = False
        if done:
            break
        batch = await consumer.getmany(timeout_ms=500, max_records=min(500, limit - len(out)))
        for records in batch.values():
            for r in records:
                headers = list(r.headers or ())
                try:
                    meta: DeadLetter | None = parse_dlq_headers(headers)
                except ValueError:
                    meta = None
                out.append(DlqEntry(r.partition, r.offset, r.key, r.value, meta, headers))
    return out[:limit]


async def _partitions(settings: KafkaSettings, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    parts = [p["partition"] for d in described if d.get("error_code", 0) == 0 for p in d.get("partitions", [])]
    return [TopicPartition(topic, p) for p in sorted(parts)]


async def list_entries(settings: KafkaSettings, topic: str, limit: int = 100) -> list[DlqEntry]:
    """Read up to ``limit`` dead letters of ``topic`` from the beginning (no commits)."""
    tps = await _partitions(settings, Topics.dlq(topic))
    if not tps:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        return await _drain(consumer, limit)
    finally:
        await consumer.stop()


async def replay(settings: KafkaSettings, topic: str, limit: int = 1_000_000) -> int:
    """Re-inject dead letters into their original topic, ``REPLAY_CHUNK`` at a time: each
    chunk is produced (acknowledged) and then committed in group ``tonewatch-dlq-replay``,
    so memory stays bounded, a second replay does not repeat the first, and an
    interrupted one repeats at most a chunk. Only what was in the DLQ when the replay
    started is replayed (records that fail again and return are left for the next)."""
    consumer = make_consumer(settings, Topics.dlq(topic), group_id=REPLAY_GROUP, client_id="dlq-replay")
    producer = make_producer(settings, client_id="dlq-replay")
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        end = await consumer.end_offsets(list(consumer.assignment()))
        done = 0
        while done < limit:
            entries = await _drain(consumer, min(REPLAY_CHUNK, limit - done), end)
            if not entries:
                break
            sent = [
                await producer.send(
                    e.meta.original_topic if e.meta else topic, e.value, key=e.key, headers=original_headers(e.headers)
                )
                for e in entries
            ]
            await asyncio.gather(*sent)
            await consumer.commit()
            done += len(entries)
        return done
    finally:
        await consumer.stop()
        await producer.stop()
