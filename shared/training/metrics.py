"""Classification metrics over probability matrices (numpy only).

Per-class precision/recall/F1, macro-F1, accuracy, confusion matrix, expected
calibration error (equal-width confidence bins), accuracy versus coverage at
confidence thresholds, and bootstrap intervals of accuracy and macro-F1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
ECE_BINS = 15


def softmax(logits: npt.ArrayLike) -> FloatArray:
    """Row-wise softmax in float64."""
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    out: FloatArray = e / e.sum(axis=-1, keepdims=True)
    return out


def confusion(y_true: IntArray, y_pred: IntArray, n: int) -> IntArray:
    """``n x n`` confusion matrix, rows = gold, columns = predicted."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], n: int) -> float:
    """Macro-averaged F1 over the ``n`` classes (absent classes count as 0)."""
    m = confusion(np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64), n)
    return float(np.mean(_per_class(m)[2]))


def _per_class(m: IntArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Precision, recall and F1 per class (last axis) of one matrix or a stack of them."""
    tp = np.diagonal(m, axis1=-2, axis2=-1).astype(np.float64)
    pred = m.sum(axis=-2).astype(np.float64)
    gold = m.sum(axis=-1).astype(np.float64)
    prec = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    rec = np.divide(tp, gold, out=np.zeros_like(tp), where=gold > 0)
    denom = prec + rec
    f1 = np.divide(2 * prec * rec, denom, out=np.zeros_like(tp), where=denom > 0)
    return prec, rec, f1


def bootstrap_interval(
    matrix: npt.ArrayLike, *, resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of accuracy and macro-F1 when the evaluated rows are drawn
    again with replacement. The confusion matrix holds every (gold, predicted) pair,
    so it is all that is needed; a fixed seed makes the interval reproducible."""
    m = np.asarray(matrix, dtype=np.int64)
    n = int(m.sum())
    if n == 0:
        return {}
    draws = np.random.default_rng(seed).multinomial(n, m.ravel() / n, size=resamples).reshape(resamples, *m.shape)
    macro = _per_class(draws)[2].mean(axis=-1)
    accuracy = np.diagonal(draws, axis1=-2, axis2=-1).sum(axis=-1) / n
    tails = [(1 - level) / 2, 1 - (1 - level) / 2]
    lo_a, hi_a = np.quantile(accuracy, tails)
    lo_f, hi_f = np.quantile(macro, tails)
    return {"accuracy": (float(lo_a), float(hi_a)), "macro_f1": (float(lo_f), float(hi_f))}


def expected_calibration_error(conf: FloatArray, correct: npt.NDArray[np.bool_], bins: int = ECE_BINS) -> float:
    """ECE with ``bins`` equal-width bins over (0, 1]."""
    if conf.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def report(y_true: Sequence[int], probs: npt.ArrayLike, labels: Sequence[str]) -> dict[str, Any]:
    """Full metrics dict (JSON-ready) for gold indices and a probability matrix. With no
    rows, accuracy, macro-F1 and ECE are None (n/a), not 0.0."""
    p = np.asarray(probs, dtype=np.float64)
    gold = np.asarray(y_true, dtype=np.int64)
    pred = p.argmax(axis=1).astype(np.int64) if len(p) else np.zeros(0, np.int64)
    conf = p.max(axis=1) if len(p) else np.zeros(0)
    correct = pred == gold
    m = confusion(gold, pred, len(labels))
    prec, rec, f1 = _per_class(m)
    support = m.sum(axis=1)
    coverage = []
    for t in THRESHOLDS:
        keep = conf >= t
        coverage.append(
            {
                "threshold": t,
                "coverage": float(keep.mean()) if len(p) else 0.0,
                "accuracy": float(correct[keep].mean()) if keep.any() else None,
            }
        )
    return {
        "n": len(gold),
        "accuracy": float(correct.mean()) if len(p) else None,
        "macro_f1": float(f1.mean()) if len(p) else None,
        "ece": expected_calibration_error(conf, correct) if len(p) else None,
        "per_class": {
            lab: {
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, lab in enumerate(labels)
        },
        "confusion": {"labels": list(labels), "matrix": m.tolist()},
        "coverage": coverage,
    }
