"""Produce many records at once: one broker batch per partition, one future per batch.

``producer.send`` per record costs a future, a metadata tuple and a done-callback per
record, resolved on the event loop; for the classifier that was a quarter of its
event-loop time outside the model. :func:`send_all` groups records by partition
itself, with the producer's default partitioner (murmur2 of the key, as the Java
clients do), so a key's records land on the same partition, in order, exactly as
with ``send``. The producer's idempotence and ``acks`` apply to these batches too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from aiokafka.partitioner import DefaultPartitioner

Record = tuple[str, bytes, bytes]
"""(topic, key, value)."""

REFUSED_SIZE: tuple[type[KafkaError], ...] = (MessageSizeTooLargeError, RecordListTooLargeError)
"""A record (or the batch it was sent in) over the topic's ``max.message.bytes`` (or, raised
by :func:`send_all` before sending, over ``max_record_bytes``)."""
REFUSED: tuple[type[KafkaError], ...] = (*REFUSED_SIZE, InvalidTimestampError, CorruptRecordException)
"""Errors about the records sent, not about the broker or the topic: the topic refuses them,
however often sent. Refused by the broker, a record leaves a gap in the idempotent
producer's sequence of its partition: every later record the producer sends there fails
with ``OutOfOrderSequenceNumber``, until a new producer (a new producer id) is used."""


async def send_all(producer: AIOKafkaProducer, records: Iterable[Record], *, max_record_bytes: int = 1_000_000) -> int:
    """Send every record and wait until the broker acknowledged all; returns how many.

    Raises ``MessageSizeTooLargeError`` before sending anything when a record is
    larger than ``max_record_bytes`` (the broker's default limit is 1 MiB), and the
    first ``KafkaError`` of any batch (callers retry the whole call; consumers count
    each event id once, so a record sent twice is harmless)."""
    partitioner = DefaultPartitioner()
    partitions: dict[str, list[int]] = {}
    groups: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
    for topic, key, value in records:
        if len(key) + len(value) > max_record_bytes:
            raise MessageSizeTooLargeError(
                f"a record for {topic} is {len(key) + len(value)} bytes, over the {max_record_bytes}-byte limit"
            )
        if topic not in partitions:
            partitions[topic] = sorted(await producer.partitions_for(topic))
        ids = partitions[topic]
        groups.setdefault((topic, partitioner(key, ids, ids)), []).append((key, value))
    futures: list[asyncio.Future[Any]] = []
    for (topic, partition), items in groups.items():
        batch = producer.create_batch()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: ship it, start another
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # an empty batch takes any record
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*futures)
    return sum(len(items) for items in groups.values())
