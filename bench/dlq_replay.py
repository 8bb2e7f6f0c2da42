"""``tonewatch dlq replay`` (``shared.kafka.dlq_ops.replay``: chunks of 1,000, acks awaited
together, a commit per chunk) next to the one-record-per-round-trip peer it replaced
(read everything, ``send_and_wait`` each record, commit once), in one run, each on its
own fresh DLQ of ``--n`` dead letters. Prints wall time and Python's peak traced memory.

Needs the local stack (``tonewatch stack up``); uses throw-away topics.
Last line: one JSON object. Usage: ``python bench/dlq_replay.py [--n 5000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.config import KafkaSettings  # noqa: E402
from shared.kafka import dlq_ops  # noqa: E402
from shared.kafka.clients import ensure_topics, make_consumer, make_producer  # noqa: E402
from shared.kafka.dlq import DeadLetterWriter, FailedRecord, original_headers  # noqa: E402
from shared.topics import Topics  # noqa: E402


async def one_by_one(settings: KafkaSettings, topic: str) -> int:
    """The peer: the whole DLQ in memory, one acknowledged send per record, one commit."""
    consumer = make_consumer(settings, Topics.dlq(topic), group_id=dlq_ops.REPLAY_GROUP, client_id="bench-peer")
    producer = make_producer(settings, client_id="bench-peer")
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        entries = await dlq_ops._drain(consumer, 1_000_000)
        for e in entries:
            target = e.meta.original_topic if e.meta else topic
            await producer.send_and_wait(target, e.value, key=e.key, headers=original_headers(e.headers))
        if entries:
            await consumer.commit()
        return len(entries)
    finally:
        await consumer.stop()
        await producer.stop()


async def fill(settings: KafkaSettings, n: int) -> str:
    topic = f"bench-dlq-{uuid.uuid4().hex[:8]}.news.raw"
    await ensure_topics(settings, [topic, Topics.dlq(topic)], partitions=1)
    producer = make_producer(settings, client_id="bench-fill")
    await producer.start()
    try:
        writer = DeadLetterWriter(producer, "bench")
        for i in range(n):
            value = (f"bad-{i} " + "x" * 300).encode()
            await writer.write(FailedRecord(topic, 0, i, b"k", value, [], "ClassificationError", "malformed"))
    finally:
        await producer.stop()
    return topic


Replay = Callable[[KafkaSettings, str], Awaitable[int]]


async def measure(settings: KafkaSettings, n: int, fn: Replay) -> dict[str, float]:
    topic = await fill(settings, n)
    tracemalloc.start()
    t0 = time.monotonic()
    replayed = await fn(settings, topic)
    seconds = time.monotonic() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert replayed == n, (replayed, n)
    return {"seconds": round(seconds, 2), "peak_traced_mb": round(peak / 1e6, 1)}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5_000)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # the writer logs every dead letter it writes
    settings = KafkaSettings()
    peer = await measure(settings, args.n, one_by_one)
    ours = await measure(settings, args.n, lambda s, t: dlq_ops.replay(s, t))
    print(f"{args.n:,} dead letters of about 310 bytes")
    print(f"{'':34} {'seconds':>8} {'peak traced MB':>15}")
    for label, r in (("one send per round trip (peer)", peer), ("chunks of 1,000 (dlq replay)", ours)):
        print(f"{label:34} {r['seconds']:>8} {r['peak_traced_mb']:>15}")
    print(json.dumps({"n": args.n, "peer": peer, "ours": ours}))


if __name__ == "__main__":
    asyncio.run(main())
