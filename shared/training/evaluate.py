"""Evaluate ONNX variants of a model on a labelled split.

Each variant file is run with ONNX Runtime on the CPU execution provider, with the
shipped ``tokenizer.json`` (the same files the services load). A variant that the
CPU provider cannot run is recorded as ``{"status": "not evaluated: needs GPU"}``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.inference.registry import VARIANT_FILES
from shared.training.metrics import FloatArray, report, softmax

NOT_EVALUATED_GPU = "not evaluated: needs GPU"


class OnnxClassifier:
    """Minimal tokenizer + ONNX Runtime session pair (CPU) for evaluation."""

    def __init__(self, model: Path, tokenizer: Path, threads: int = 0) -> None:
        """Load ``model`` on the CPU provider; ``threads`` 0 = ORT default."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(tokenizer))

    def logits(self, texts: Sequence[str], batch_size: int = 64) -> FloatArray:
        """Float64 logits for ``texts`` (batched, padded to the longest)."""
        outs: list[FloatArray] = []
        for i in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(list(texts[i : i + batch_size]))
            width = max(len(e.ids) for e in enc)
            ids = np.zeros((len(enc), width), dtype=np.int64)
            mask = np.zeros((len(enc), width), dtype=np.int64)
            for r, e in enumerate(enc):
                ids[r, : len(e.ids)] = e.ids
                mask[r, : len(e.ids)] = e.attention_mask
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            out = self.session.run(["logits"], feeds)[0]
            outs.append(np.asarray(out, dtype=np.float64))
        if not outs:
            return np.zeros((0, 0), dtype=np.float64)
        return np.concatenate(outs)


def evaluate_variant(
    model: Path,
    tokenizer: Path,
    texts: Sequence[str],
    gold: Sequence[int],
    labels: Sequence[str],
) -> tuple[dict[str, Any], FloatArray | None]:
    """Metrics of one ONNX file on (``texts``, ``gold``), and its probabilities."""
    try:
        clf = OnnxClassifier(model, tokenizer)
        start = time.monotonic()
        probs = softmax(clf.logits(texts))
        elapsed = time.monotonic() - start
    except Exception as exc:  # provider cannot run this graph
        if model.name == VARIANT_FILES["fp16"]:
            return {"status": NOT_EVALUATED_GPU, "error": str(exc)[:300]}, None
        raise
    out = report(gold, probs, labels)
    out["status"] = "evaluated on CPUExecutionProvider"
    out["seq_per_s_cpu"] = round(len(texts) / elapsed, 1) if elapsed > 0 else None
    return out, probs


def evaluate_dir(
    folder: Path,
    texts: Sequence[str],
    gold_labels: Sequence[str],
    labels: Sequence[str],
    variants: Sequence[str] = ("fp32", "int8", "fp16"),
) -> dict[str, dict[str, Any]]:
    """Evaluate every present variant in ``folder`` (a registry version folder).

    Variants other than fp32 also get ``agreement_with_fp32`` (share of identical
    argmax) and ``max_abs_prob_diff_fp32`` when fp32 is present.
    """
    index = {lab: i for i, lab in enumerate(labels)}
    gold = [index[g] for g in gold_labels]
    results: dict[str, dict[str, Any]] = {}
    probs: dict[str, FloatArray] = {}
    for variant in variants:
        path = folder / VARIANT_FILES[variant]
        if path.is_file():
            results[variant], p = evaluate_variant(path, folder / "tokenizer.json", texts, gold, labels)
            if p is not None:
                probs[variant] = p
    ref = probs.get("fp32")
    for variant, p in probs.items():
        if ref is not None and variant != "fp32" and len(p):
            results[variant]["agreement_with_fp32"] = float((p.argmax(1) == ref.argmax(1)).mean())
            results[variant]["max_abs_prob_diff_fp32"] = float(np.abs(p - ref).max())
    return results


def int8_gap(metrics: dict[str, dict[str, Any]]) -> dict[str, float] | None:
    """fp32 minus int8, in points (x100), for accuracy, macro-F1 and ECE."""
    a, b = metrics.get("fp32", {}), metrics.get("int8", {})
    if a.get("accuracy") is None or b.get("accuracy") is None:  # absent, or no rows evaluated
        return None
    return {k: round(100 * (float(a[k]) - float(b[k])), 2) for k in ("accuracy", "macro_f1", "ece")}
