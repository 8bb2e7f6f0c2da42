"""aiokafka's producer with and without ``shared.kafka.metadata_backoff``, side by side
in one run, while the broker is down.

Each side runs in its own process: an idempotent producer (the project's factory)
sends one message, the local broker is stopped, the partition's leader is marked
unavailable (as the broker's controlled shutdown leaves it), one more message is
sent, and for ``--seconds`` the run counts failed metadata updates and the process's
CPU seconds. Then the broker is started again and the held message must be delivered.

Needs the local stack (``tonewatch stack up``); it stops and starts its broker.
Last line: one JSON object. Usage: ``python bench/metadata_backoff.py [--seconds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


class _FailedUpdates(logging.Handler):
    count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Unable to update metadata"):
            _FailedUpdates.count += 1


async def _side(with_backoff: bool, seconds: float) -> dict[str, object]:
    from shared.config import KafkaSettings
    from shared.kafka import metadata_backoff
    from shared.kafka.clients import ensure_topics, make_producer
    from shared.stack import manager
    from shared.stack.settings import StackSettings

    if with_backoff:
        metadata_backoff.install()
    kafka_log = logging.getLogger("aiokafka")
    kafka_log.addHandler(_FailedUpdates())
    kafka_log.setLevel(logging.ERROR)
    kafka_log.propagate = False
    settings, stack = KafkaSettings(), StackSettings()
    topic = f"bench-backoff-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    producer = make_producer(settings, client_id="bench-backoff")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"before", partition=0)
        await asyncio.to_thread(manager.down, stack, only=["kafka"])
        try:
            partitions = producer.client.cluster._partitions[topic]
            partitions[0] = partitions[0]._replace(leader=-1)
            held = await producer.send(topic, b"during", partition=0)
            _FailedUpdates.count, cpu0 = 0, time.process_time()
            await asyncio.sleep(seconds)
            failed, cpu = _FailedUpdates.count, time.process_time() - cpu0
        finally:
            await asyncio.to_thread(manager.up, stack, only=["kafka"])
        t0 = time.monotonic()
        await asyncio.wait_for(held, 120)
        return {
            "failed_updates": failed,
            "cpu_s": round(cpu, 2),
            "delivered_after_restart_s": round(time.monotonic() - t0, 1),
        }
    finally:
        await producer.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--side", choices=["without", "with"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        print(json.dumps(asyncio.run(_side(args.side == "with", args.seconds))))
        return
    results = {}
    for side in ("without", "with"):
        out = subprocess.run(
            [sys.executable, __file__, "--side", side, "--seconds", str(args.seconds)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[side] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"broker down for {args.seconds:g} s, one message held for a leaderless partition")
    print(f"{'':28} {'failed metadata updates':>24} {'CPU s':>7} {'delivered after restart':>24}")
    for side, label in (("without", "aiokafka alone"), ("with", "with metadata_backoff")):
        r = results[side]
        print(f"{label:28} {r['failed_updates']:>24} {r['cpu_s']:>7} {str(r['delivered_after_restart_s']) + ' s':>24}")
    print(json.dumps({"seconds": args.seconds, **results}))


if __name__ == "__main__":
    main()
