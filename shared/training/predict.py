"""Batch prediction over JSONL: ``{"id","text"}`` in, ``{"id","label","confidence","probs"}`` out.

A line that is not a JSON object with a string ``text`` (invalid UTF-8 or JSON, lone
surrogate escapes included) yields ``{"id": ..., "error": "..."}`` and processing goes
on; texts are cut to what the tokenizer can use before tokenizing. Files are streamed in
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


def _parse(raw: bytes, lineno: int) -> tuple[Any, str | None, str | None]:
    """(id, text, error) of one input line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return lineno, None, f"line {lineno}: invalid UTF-8 at byte {exc.start}"
    try:
        rec = json.loads(line)
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        return lineno, None, f"line {lineno}: invalid JSON ({getattr(exc, 'msg', exc)})"
    if not isinstance(rec, dict):
        return lineno, None, f"line {lineno}: expected a JSON object"
    rid = rec.get("id", lineno)
    if not _encodable(rid):
        return lineno, None, f"line {lineno}: field 'id' is not valid Unicode (a lone surrogate escape)"
    text = rec.get("text")
    if not isinstance(text, str):
        return rid, None, f"line {lineno}: field 'text' must be a string"
    if not _encodable(text):
        return rid, None, f"line {lineno}: field 'text' is not valid Unicode (a lone surrogate escape)"
    return rid, text, None


def _encodable(value: Any) -> bool:
    """Whether ``value`` survives UTF-8 (JSON's "\\ud800" escapes decode to lone surrogates)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, TypeError, ValueError):
        return False
    return True


def _batches(fh: IO[bytes]) -> Iterator[list[tuple[Any, str | None, str | None]]]:
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
    if dst.resolve() == src.resolve() or (dst.exists() and dst.samefile(src)):
        raise ValueError(f"--output {dst} is the input file; writing it would destroy the input")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as fin, dst.open("w", encoding="utf-8") as fout:
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
