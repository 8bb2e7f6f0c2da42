"""Two ways to build the CPU int8 variant, side by side in one run.

(a) ours: ``quantize_dynamic`` of the plain exported fp32 graph (ONNX Runtime fuses the
    quantized graph itself at load time): what ``tonewatch models train|export|quantize``
    build;
(b) peer: ``quantize_dynamic`` of the ``onnxruntime.transformers`` optimizer's fused graph
    (the recipe used before).

Both from the promoted model's ``model.fp32.onnx``, same settings otherwise (QInt8
per-channel weights, the first layer's FFN output projection kept in fp32). Measured
through the engine the services use: two callers at once, one ORT thread each, batches
of 256 real Guardian headlines, ``--repeat`` interleaved rounds (medians); CPU seconds of
the process during the timed calls; accuracy and macro-F1 on the task's held-out test split.
Last line: one JSON object. Usage: ``python bench/int8_recipes.py [--task sentiment] [-n 2000]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services.ingest.sources import guardian_rows  # noqa: E402
from shared.inference.engine import Classifier  # noqa: E402
from shared.inference.registry import ModelEntry, ModelFile, Registry  # noqa: E402
from shared.inference.session import open_session  # noqa: E402
from shared.inference.settings import InferenceSettings  # noqa: E402
from shared.inference.tokenize import TextTokenizer  # noqa: E402
from shared.training.datasets import load_task  # noqa: E402
from shared.training.evaluate import evaluate_variant  # noqa: E402
from shared.training.optimize import optimize_graph, quantize_int8, sensitive_nodes  # noqa: E402


def build(fp32: Path, out: Path, entry: ModelEntry) -> dict[str, Path]:
    """Both int8 files, from the same fp32 graph."""
    plain = out / "plain.int8.onnx"
    quantize_int8(fp32, plain, keep_fp32=sensitive_nodes(fp32))
    shape = entry.card.get("optimization", {})
    heads, hidden = int(shape.get("num_heads", 0)), int(shape.get("hidden_size", 0))  # 0: detect
    fused_fp32 = out / "fused.fp32.onnx"
    optimize_graph(fp32, fused_fp32, num_heads=heads, hidden_size=hidden)
    fused = out / "fused.int8.onnx"
    quantize_int8(fused_fp32, fused, keep_fp32=sensitive_nodes(fused_fp32))
    return {"ours: int8 of the plain export": plain, "peer: int8 of the fused graph": fused}


def engine_for(path: Path, entry: ModelEntry) -> Classifier:
    settings = InferenceSettings(device="cpu", intra_op_threads=1, allow_spinning=True)
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    model = open_session(ModelFile(path, data, sha), "cpu", settings, entry.inputs, entry.max_length)
    tokenizer = TextTokenizer.from_file(entry.tokenizer_path, entry.max_length)
    return Classifier(entry, model, tokenizer, settings, "int8", sha)


def timed(clf: Classifier, chunks: list[list[str]], n: int) -> tuple[float, float]:
    """(sequences per second, CPU seconds) for one pass over ``chunks`` by two callers."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        cpu, start = time.process_time(), time.perf_counter()
        list(pool.map(clf.predict, chunks))
        return n / (time.perf_counter() - start), time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="sentiment", choices=["sentiment", "intent"])
    ap.add_argument("-n", type=int, default=2000, help="Guardian headlines per timed pass")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--models-dir", type=Path, default=None)
    args = ap.parse_args()
    entry = Registry(args.models_dir).promoted(args.task)
    texts = [r["Text"] for r in guardian_rows()][: args.n]
    chunks = [texts[i : i + 256] for i in range(0, len(texts), 256)]
    test = load_task(args.task).test
    result: dict[str, Any] = {"model": f"{args.task}/{entry.version}", "texts": len(texts), "rounds": args.repeat}
    with tempfile.TemporaryDirectory() as tmp:
        files = build(entry.path / "model.fp32.onnx", Path(tmp), entry)
        engines = {name: engine_for(path, entry) for name, path in files.items()}
        for clf in engines.values():
            clf.predict(texts[:256])  # warm-up
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
        for _ in range(args.repeat):
            for name, clf in engines.items():
                runs[name].append(timed(clf, chunks, len(texts)))
        for name, path in files.items():
            metrics, _ = evaluate_variant(
                path,
                entry.tokenizer_path,
                [e.text for e in test],
                [entry.labels.index(e.label) for e in test],
                entry.labels,
            )
            result[name] = {
                "seq_per_s": round(statistics.median(r[0] for r in runs[name]), 1),
                "cpu_s_per_pass": round(statistics.median(r[1] for r in runs[name]), 2),
                "rounds_seq_per_s": [round(r[0], 1) for r in runs[name]],
                "test_accuracy": round(metrics["accuracy"], 4),
                "test_macro_f1": round(metrics["macro_f1"], 4),
                "bytes": path.stat().st_size,
            }
    ours, peer = (result[k] for k in files)
    result["speedup"] = round(ours["seq_per_s"] / peer["seq_per_s"], 3)
    print(f"{'':34}{'seq/s':>9}{'CPU-s':>8}{'acc':>8}{'macro-F1':>10}")
    for name in files:
        r = result[name]
        print(f"{name:34}{r['seq_per_s']:>9}{r['cpu_s_per_pass']:>8}{r['test_accuracy']:>8}{r['test_macro_f1']:>10}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
