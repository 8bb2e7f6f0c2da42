"""Batch prediction over JSONL: ``{"id","text"}`` in, ``{"id","label","confidence","probs"}`` out.

A line that is not a JSON object with a string ``text`` (invalid UTF-8 or JSON, JSON
nested too deeply, lone surrogate escapes) or whose ``id`` is not a string or an integer
(null, an object, a list, a boolean, a fraction, NaN or Infinity), repeats the id of an
earlier line, or is a reserved ``"line N"`` string yields ``{"id": ..., "error": "..."}``
and processing goes on. A line without a usable id (none, or one refused) gets
``"line N"`` (its line number in the file, blank lines counted) as id: a string that no
accepted id can equal, so every id in the output is distinct. The output keeps the input
order, one line per non-blank input line. Output is strict JSON (no NaN): a model
returning non-finite probabilities gives error records too. A UTF-8 byte-order mark at
the start of the file is skipped. Texts are cut to what the tokenizer can use before
tokenizing. Files are streamed in batches, so memory stays bounded whatever the input
size, except for the ids seen, kept to refuse a repeated one (about 100 bytes per id,
plus the id's own length).

The output is written to a temporary file beside it (``.<name>.<random>.tmp``), flushed
to the disk and renamed over ``--output`` only once every line is written: a run that
fails or is interrupted (an exception, Ctrl-C, or SIGTERM where the command line turns it
into :class:`SystemExit`) removes the temporary file and leaves an earlier output as it
was. An output that exists and is not a regular file (``/dev/stdout``, a pipe) is written
directly. ``-`` (:data:`STDIO`) reads standard input or writes standard output (UTF-8,
whatever the locale; a file named ``-`` needs a folder in front, e.g. ``/tmp/-``).
"""

from __future__ import annotations

import codecs
import io
import json
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from shared.training.metrics import FloatArray

Scorer = Callable[[Sequence[str]], FloatArray]
"""Texts -> probability matrix (rows sum to 1, columns in label order)."""

BATCH = 256

STDIO = Path("-")
"""``--input -`` / ``--output -``: standard input / output (``Path("./-")`` is the same path,
so a file named ``-`` needs a folder in front)."""

_LINE_ID = re.compile(r"line [1-9][0-9]*")
"""The ids :func:`line_id` makes, refused in the input so that none can collide."""


@dataclass
class PredictStats:
    """Counts of a prediction run."""

    lines: int = 0
    predicted: int = 0
    errors: int = 0


def line_id(lineno: int) -> str:
    """The id of a line without a usable one: ``"line N"``, which no accepted id can equal."""
    return f"line {lineno}"


def _parse(raw: bytes, lineno: int, seen: dict[Any, int]) -> tuple[Any, str | None, str | None]:
    """(id, text, error) of one input line; ``seen`` maps each id accepted so far to its
    line, to refuse a repeated one (and takes this line's)."""
    gen = line_id(lineno)
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return gen, None, f"line {lineno}: invalid UTF-8 at byte {exc.start}"
    try:
        rec = json.loads(line)
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        return gen, None, f"line {lineno}: invalid JSON ({getattr(exc, 'msg', exc)})"
    except RecursionError:  # the decoder's depth limit: one line must not end the run
        return gen, None, f"line {lineno}: JSON nested too deeply"
    if not isinstance(rec, dict):
        return gen, None, f"line {lineno}: expected a JSON object"
    if "id" not in rec:
        rid: Any = gen
    else:
        rid = rec["id"]
        problem = _id_problem(rid)
        if problem is not None:
            return gen, None, f"line {lineno}: field 'id' {problem}"
        if rid in seen:
            return gen, None, f"line {lineno}: id {_shown(rid)} repeats the id of line {seen[rid]}"
        seen[rid] = lineno
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
    if isinstance(rid, bool) or not isinstance(rid, str | int):
        return f"must be a string or an integer, not {_json_type(rid)}"
    if isinstance(rid, str) and _LINE_ID.fullmatch(rid):
        return f'{_shown(rid)} is reserved: "line N" is the id given to a line without one'
    return None


def _shown(rid: str | int) -> str:
    """An id as JSON for a message, cut to 60 characters."""
    text = _dumps(rid)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a fraction"
    return "an object" if isinstance(value, dict) else "an array"


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
    seen: dict[Any, int] = {}
    for lineno, line in enumerate(fh, start=1):
        if lineno == 1:
            line = line.removeprefix(codecs.BOM_UTF8)  # as the labelled-data loader reads it
        if not line.strip():
            continue
        batch.append((lineno, *_parse(line, lineno, seen)))
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


def stdout_is(path: Path) -> bool:
    """Whether standard output is the file ``path`` (``--output - >> in.jsonl``): reading
    it while writing it would read the records back as input, for ever."""
    try:
        out = os.fstat(sys.stdout.fileno())
        return os.path.samestat(out, path.stat())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # no real standard output
        return False


@contextmanager
def _replacing(dst: Path) -> Iterator[IO[str]]:
    """A text file that replaces ``dst`` once the block ends without an exception: written
    as ``.<name>.<random>.tmp`` in the same folder, flushed, renamed over ``dst`` (a
    symbolic link's target), the rename flushed; removed on any exception (KeyboardInterrupt
    and SystemExit too), leaving ``dst`` as it was. ``dst`` existing as something other than
    a regular file (``/dev/stdout``, a pipe) is written directly."""
    from shared.training.card import fsync_path

    if dst.exists() and not dst.is_file():
        with dst.open("w", encoding="utf-8") as direct:
            yield direct
        return
    target = Path(os.path.realpath(dst))
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        with tmp.open("x", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(target.parent)


@contextmanager
def _source(src: Path) -> Iterator[IO[bytes]]:
    """``src`` opened for bytes; :data:`STDIO` is standard input, left open."""
    if src == STDIO:
        yield sys.stdin.buffer
        return
    with src.open("rb") as fh:
        yield fh


def output_folder(dst: Path) -> Path:
    """The folder :func:`_replacing` writes ``dst`` in (its temporary file, then the rename):
    that of the file a symbolic link names. It may not exist yet: :func:`_sink` creates it.
    What a caller checks before a long run (the model's load) to find an output that
    cannot be written before it, not after."""
    return Path(os.path.realpath(dst)).parent


@contextmanager
def _sink(dst: Path) -> Iterator[IO[str]]:
    """Where the records go: :data:`STDIO` is standard output as UTF-8 (not the locale's
    encoding, which may not encode every text), flushed and left open; anything else is
    :func:`_replacing`, its folder (:func:`output_folder`) created first."""
    if dst != STDIO:
        output_folder(dst).mkdir(parents=True, exist_ok=True)
        with _replacing(dst) as fh:
            yield fh
        return
    sys.stdout.flush()  # whatever was printed before goes first
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
    try:
        yield out
        out.flush()
    finally:
        out.detach()  # closing the wrapper would close standard output


def predict_file(scorer: Scorer, labels: Sequence[str], src: Path, dst: Path) -> PredictStats:
    """Stream ``src`` JSONL through ``scorer`` into ``dst`` JSONL (same order); ``dst`` is
    replaced only once every line is written (an interrupted run leaves it as it was).
    Either may be :data:`STDIO`."""
    stats = PredictStats()
    if src != STDIO and dst != STDIO and same_file(src, dst):
        raise ValueError(f"--output {dst} is the input file; writing it would destroy the input")
    if src != STDIO and dst == STDIO and stdout_is(src):
        raise ValueError(f"standard output is the input file {src}; predictions would be read back as input")
    with _source(src) as fin, _sink(dst) as fout:
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
