"""Classifier peak memory on a backlog of large raw events.

``--records`` news events of about ``--kb`` KB each (default 200 x 1,000 KB, near the
largest that ingest accepts) are produced to ``news.raw`` (unique topic prefix, fresh
consumer group) before the classifier starts, so it meets them as one backlog; then a
real ``python -m services run classifier`` process scores them. Printed: its peak RSS
(``VmHWM``) and how long scoring took; a run with ``--kb 1`` gives the baseline (models,
runtime). The stack must be up (it is migrated here).
Last line: one JSON object. Usage: ``python bench/classifier_memory.py [--records 200] [--kb 1000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services.classifier.config import ClassifierSettings  # noqa: E402
from shared.config import ServiceSettings  # noqa: E402
from shared.db.migrate import upgrade  # noqa: E402
from shared.kafka.clients import ensure_topics, make_producer  # noqa: E402
from shared.topics import Topics  # noqa: E402

WORDS = "markets rally as the central bank holds rates while investors weigh the outlook for earnings ".split()


def article(i: int, kb: int) -> bytes:
    words = (WORDS[(i + n) % len(WORDS)] for n in range(kb * 1000 // 6))
    text = " ".join(words)[: kb * 1000 - 200]
    event = {"id": f"mem-{i}", "text": text, "event_time": datetime.now(UTC).isoformat()}
    return json.dumps(event).encode()


async def produce(settings: ClassifierSettings, topics: Topics, records: int, kb: int) -> None:
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    producer = make_producer(settings.kafka, client_id="bench-memory")
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topics.news_raw, article(i, kb)) for i in range(records)])
    finally:
        await producer.stop()


async def scored(settings: ClassifierSettings, topic: str) -> int:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka.bootstrap_servers)
    await consumer.start()  # subscribed: fetches the topic's metadata
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(ends.values())
    finally:
        await consumer.stop()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--kb", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    run_id = uuid.uuid4().hex[:8]
    topics = Topics(prefix=f"bench-mem-{run_id}.")
    settings = ClassifierSettings(topics=topics)
    upgrade(ServiceSettings().postgres)
    asyncio.run(produce(settings, topics, args.records, args.kb))
    env = dict(os.environ, TW_TOPICS__PREFIX=topics.prefix, TW_CLASSIFIER_GROUP_ID=f"bench-mem-{run_id}")
    log = Path(tempfile.gettempdir()) / f"bench-mem-{run_id}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services", "run", "classifier"], env=env, stdout=out, stderr=out
        )
    t0 = time.monotonic()
    try:
        while (done := asyncio.run(scored(settings, topics.text_scored))) < args.records:
            if proc.poll() is not None or time.monotonic() - t0 > args.timeout:
                raise SystemExit(f"classifier stopped or timed out ({done} scored); log: {log}")
            time.sleep(0.5)
        peak = peak_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    seconds = round(time.monotonic() - t0, 1)
    print(f"{args.records} records x {args.kb} KB: peak RSS {peak:.0f} MB, {seconds} s to score them all")
    print(json.dumps({"records": args.records, "kb": args.kb, "peak_rss_mb": round(peak, 1), "seconds": seconds}))


if __name__ == "__main__":
    main()
