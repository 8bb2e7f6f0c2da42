"""Batch prediction over JSONL: ``{"id","text"}`` in, ``{"id","label","confidence","probs"}`` out.

A line that is not a JSON object with a string ``text`` yields
``{"id": ..., "error": "..."}`` and processing goes on. Files are streamed in
batches, so memory stays bounded whatever the input size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from shared.training.metrics import FloatArray

Scorer = Callable[[Sequence[str]], FloatArray]
"""Texts -> probability matrix (rows sum to 1, columns in label order)."""

BATCH = 256


@dataclass
class PredictStats:
    """Counts of a prediction run."""

    lines: int = 0
    predicted: int = 0
    errors: int = 0


def _parse(line: str, lineno: int) -> tuple[Any, str | None, str | None]:
    """(id, text, error) of one input line."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        return lineno, None, f"line {lineno}: invalid JSON ({exc.msg})"
    if not isinstance(rec, dict):
        return lineno, None, f"line {lineno}: expected a JSON object"
    rid = rec.get("id", lineno)
    text = rec.get("text")
    if not isinstance(text, str):
        return rid, None, f"line {lineno}: field 'text' must be a string"
    return rid, text, None


def _batches(fh: IO[str]) -> Iterator[list[tuple[Any, str | None, str | None]]]:
    batch: list[tuple[Any, str | None, str | None]] = []
    for lineno, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        batch.append(_parse(line, lineno))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_records(scorer: Scorer, labels: Sequence[str], items: Sequence[tuple[Any, str]]) -> list[dict[str, Any]]:
    """Output records for (id, text) pairs."""
    if not items:
        return []
    probs = np.asarray(scorer([t for _, t in items]), dtype=np.float64)
    out = []
    for (rid, _), row in zip(items, probs, strict=True):
        best = int(row.argmax())
        out.append(
            {
                "id": rid,
                "label": labels[best],
                "confidence": round(float(row[best]), 6),
                "probs": {lab: round(float(p), 6) for lab, p in zip(labels, row, strict=True)},
            }
        )
    return out


def predict_file(scorer: Scorer, labels: Sequence[str], src: Path, dst: Path) -> PredictStats:
    """Stream ``src`` JSONL through ``scorer`` into ``dst`` JSONL (same order)."""
    stats = PredictStats()
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open(encoding="utf-8") as fin, dst.open("w", encoding="utf-8") as fout:
        for batch in _batches(fin):
            stats.lines += len(batch)
            ok = [(rid, text) for rid, text, err in batch if err is None and text is not None]
            preds = iter(predict_records(scorer, labels, ok))
            for rid, _, err in batch:
                rec = {"id": rid, "error": err} if err is not None else next(preds)
                stats.errors += err is not None
                stats.predicted += err is None
                fout.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return stats
