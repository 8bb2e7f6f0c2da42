"""Inter-annotator agreement of the sentiment gold labels, computed from the files.

``data/sentiment/extra/agreement_second_annotator.csv`` is a second, blind annotation
(``row,label``) of some gold rows; this compares it with the gold files' labels for the
same rows: share of rows agreed, Cohen's kappa, and macro-F1 with the second annotator
taken as a classifier of the gold labels (the figure a model's macro-F1 compares with).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.labels import SENTIMENT_LABELS
from shared.training.datasets import DATA_DIR, _check_label, _csv_rows, default_files
from shared.training.metrics import confusion, macro_f1

SECOND_ANNOTATOR = DATA_DIR / "sentiment" / "extra" / "agreement_second_annotator.csv"


@dataclass(frozen=True)
class Agreement:
    rows: int
    agreed: float  # share of rows with the same label
    kappa: float  # Cohen's kappa
    macro_f1: float  # the second annotator scored against the gold labels
    disagreements: list[tuple[str, str, int]]  # (gold, second, rows), most frequent first


def row_labels(path: Path) -> dict[int, str]:
    """``row -> label`` of a ``row,label`` file."""
    out: dict[int, str] = {}
    for i, rec in _csv_rows(path, ("row", "label")):
        out[int(rec["row"])] = _check_label("sentiment", rec["label"], f"{path}:{i}")
    return out


def cohen_kappa(gold: Iterable[int], other: Iterable[int], n: int) -> float:
    """Cohen's kappa of two labellings over ``n`` classes."""
    m = confusion(np.asarray(list(gold), np.int64), np.asarray(list(other), np.int64), n).astype(np.float64)
    total = m.sum()
    observed = np.trace(m) / total
    expected = float((m.sum(axis=0) * m.sum(axis=1)).sum()) / total**2
    return float((observed - expected) / (1 - expected)) if expected < 1 else 1.0


def compare(gold: dict[int, str], second: dict[int, str]) -> Agreement:
    """The two labellings compared on the rows both have."""
    rows = sorted(gold.keys() & second.keys())
    if not rows:
        raise ValueError("no row is labelled in both")
    # the labels either annotator used: one nobody used is no disagreement (macro-F1 would
    # count it as F1 0)
    used = [label for label in SENTIMENT_LABELS if any(gold[r] == label or second[r] == label for r in rows)]
    index = {label: i for i, label in enumerate(used)}
    y_gold = [index[gold[r]] for r in rows]
    y_second = [index[second[r]] for r in rows]
    n = len(used)
    pairs = Counter((gold[r], second[r]) for r in rows if gold[r] != second[r])
    return Agreement(
        rows=len(rows),
        agreed=sum(a == b for a, b in zip(y_gold, y_second, strict=True)) / len(rows),
        kappa=cohen_kappa(y_gold, y_second, n),
        macro_f1=macro_f1(y_gold, y_second, n),
        disagreements=[(g, s, c) for (g, s), c in pairs.most_common()],
    )


def shipped_agreement() -> Agreement:
    """The second annotation against the default gold files (parts 1-4)."""
    gold: dict[int, str] = {}
    for path in default_files("sentiment"):
        if path.suffix == ".csv":
            gold.update(row_labels(path))
    return compare(gold, row_labels(SECOND_ANNOTATOR))


def describe(a: Agreement) -> str:
    """The data card's sentence (markdown)."""
    top = ", ".join(f"gold `{g}` vs second `{o}` ({c})" for g, o, c in a.disagreements[:2]) or "none"
    return (
        f"On the {a.rows} rows it labelled, the blind second annotation agreed with the gold labels on "
        f"{100 * a.agreed:.1f}% of rows (Cohen's kappa {a.kappa:.3f}; macro-F1 {a.macro_f1:.3f} treating the second "
        f"annotator as a classifier; most frequent disagreements: {top}). Computed from the files by "
        "`python -m shared.training.datacard`."
    )
