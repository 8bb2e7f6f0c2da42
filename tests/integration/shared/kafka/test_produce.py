"""``send_all`` on the real broker: same partitions as ``send``, per-key order, many batches."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from shared.config import KafkaSettings
from shared.kafka.clients import ensure_topics, make_consumer, make_producer
from shared.kafka.produce import send_all

pytestmark = pytest.mark.integration


async def _read(kafka_settings: KafkaSettings, topic: str, unique: str, n: int) -> list[tuple[int, bytes, bytes]]:
    consumer = make_consumer(kafka_settings, topic, group_id=f"g{unique}{topic}", client_id="test")
    await consumer.start()
    try:
        got: list[tuple[int, bytes, bytes]] = []
        async with asyncio.timeout(30):
            while len(got) < n:
                batch = await consumer.getmany(timeout_ms=500)
                got += [(r.partition, r.key or b"", r.value or b"") for rs in batch.values() for r in rs]
        return got
    finally:
        await consumer.stop()


async def test_send_all_partitions_like_send_and_keeps_each_keys_order(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    ours, theirs = f"t{unique}.send-all", f"t{unique}.send-each"
    await ensure_topics(kafka_settings, [ours, theirs], partitions=3)
    keys = [f"conv-{i % 17}".encode() for i in range(3000)]
    values = [f"{k.decode()}:{i}:".encode() + b"x" * 300 for i, k in enumerate(keys)]  # ~1 MB: many batches
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        assert await send_all(producer, ((ours, k, v) for k, v in zip(keys, values, strict=True))) == 3000
        for k, v in zip(keys[:200], values[:200], strict=True):
            await producer.send_and_wait(theirs, v, key=k)
        with pytest.raises(MessageSizeTooLargeError, match="over the 1000-byte limit"):
            await send_all(producer, [(ours, b"k", b"y" * 1001)], max_record_bytes=1000)
    finally:
        await producer.stop()
    got = await _read(kafka_settings, ours, unique, 3000)
    assert sorted(v for _, _, v in got) == sorted(values)  # every record once (nothing else was sent)
    partition_of = {k: p for p, k, _ in await _read(kafka_settings, theirs, unique, 200)}
    for partition, key, _ in got:
        assert partition == partition_of[key]
    for key in set(keys):
        seq = [int(v.split(b":")[1]) for _, k, v in got if k == key]
        assert seq == sorted(seq)
