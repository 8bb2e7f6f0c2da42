"""Batch prediction over JSONL: ``{"id","text"}`` in, ``{"id","label","confidence","probs"}`` out.

A line that is not a JSON object with a string ``text`` (invalid UTF-8 or JSON, JSON
nested too deeply, lone surrogate escapes, an id that is NaN or Infinity) yields
``{"id": ..., "error": "..."}`` and processing goes on; a line without a usable id gets
its line number as id (which may equal a numeric id of another line: the output keeps the
input order, one line per non-blank input line). Output is strict JSON (no NaN): a model
returning non-finite probabilities gives error records too. A UTF-8 byte-order mark at
the start of the file is skipped. Texts are cut to what the tokenizer can use before
tokenizing. Files are streamed in batches, so memory stays bounded whatever the input size.
"""

from __future__ import annotations

import codecs
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
    except RecursionError:  # the decoder's depth limit: one line must not end the run
        return lineno, None, f"line {lineno}: JSON nested too deeply"
    if not isinstance(rec, dict):
        return lineno, None, f"line {lineno}: expected a JSON object"
    rid = rec.get("id", lineno)
    problem = _id_problem(rid)
    if problem is not None:
        return lineno, None, f"line {lineno}: field 'id' {problem}"
    text = rec.get("text")
    if not isinstance(text, str):
        return rid, None, f"line {lineno}: field 'text' must be a string"
    if not _encodable(text):
        return rid, None, f"line {lineno}: field 'text' is not valid Unicode (a lone surrogate escape)"
    return rid, text, None


def _id_problem(rid: Any) -> str | None:
    """Why ``rid`` cannot be written back into a strict UTF-8 JSON record, if it cannot."""
    try:
        _dumps({"id": rid}).encode("utf-8")
    except UnicodeEncodeError:  # before ValueError, its base class
        return "is not valid Unicode (a lone surrogate escape)"
    except ValueError:
        return "is not a finite number (NaN and Infinity are not JSON)"
    except RecursionError:
        return "is nested too deeply"
    return None


def _dumps(rec: Any) -> str:
    """Strict JSON: NaN or Infinity raise rather than write what JSON readers refuse."""
    return json.dumps(rec, ensure_ascii=False, allow_nan=False)


def _encodable(value: Any) -> bool:
    """Whether ``value`` survives UTF-8 (JSON's "\\ud800" escapes decode to lone surrogates)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, TypeError, ValueError):
        return False
    return True


def _batches(fh: IO[bytes]) -> Iterator[list[tuple[int, Any, str | None, str | None]]]:
    """Lists of (line number, id, text, error); the line number names a model's error too."""
    batch: list[tuple[int, Any, str | None, str | None]] = []
    for lineno, line in enumerate(fh, start=1):
        if lineno == 1:
            line = line.removeprefix(codecs.BOM_UTF8)  # as the labelled-data loader reads it
        if not line.strip():
            continue
        batch.append((lineno, *_parse(line, lineno)))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_records(
    scorer: Scorer, labels: Sequence[str], items: Sequence[tuple[int, Any, str]]
) -> list[dict[str, Any]]:
    """Output records for (line number, id, text) triples; a row of probabilities that
    are not all finite (a broken model) is an error record, since JSON has no NaN."""
    if not items:
        return []
    probs = np.asarray(scorer([t for _, _, t in items]), dtype=np.float64)
    out: list[dict[str, Any]] = []
    for (lineno, rid, _), row in zip(items, probs, strict=True):
        if not np.isfinite(row).all():
            out.append({"id": rid, "error": f"line {lineno}: the model returned non-finite probabilities"})
            continue
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


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same path, a symbolic or a hard link."""
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))


def predict_file(scorer: Scorer, labels: Sequence[str], src: Path, dst: Path) -> PredictStats:
    """Stream ``src`` JSONL through ``scorer`` into ``dst`` JSONL (same order)."""
    stats = PredictStats()
    if same_file(src, dst):
        raise ValueError(f"--output {dst} is the input file; writing it would destroy the input")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as fin, dst.open("w", encoding="utf-8") as fout:
        for batch in _batches(fin):
            stats.lines += len(batch)
            ok = [(lineno, rid, text) for lineno, rid, text, _ in batch if text is not None]
            preds = iter(predict_records(scorer, labels, ok))
            for _, rid, text, err in batch:
                rec = next(preds) if text is not None else {"id": rid, "error": err}
                stats.errors += "error" in rec
                stats.predicted += "error" not in rec
                fout.write(_dumps(rec) + "\n")
    return stats
