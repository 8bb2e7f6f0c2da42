"""``read_file`` on a path that is not a regular file (``<(gunzip -c f.jsonl.gz)``,
``/dev/stdin``): before, its checks each opened the path again, and on a pipe they
consumed the lines (100 lines: 0 read; 20,000: about 1,200 lost without a word, the line
numbers shifted). A pipe was then copied to a temporary file first (an endless pipe filled
the disk and sent nothing); it is now opened once, the bytes its checks read are kept in
memory (bounded) and given again, and its lines come out as they arrive."""

from __future__ import annotations

import gc
import gzip
import io
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from services.ingest import sources
from services.ingest.sources import UnreadableFile, read_file


def _pipe(tmp_path: Path, name: str, data: bytes) -> Path:
    """``tmp_path / name``, a link to the read end of a pipe (as ``<(cmd)`` gives, a
    ``/dev/fd`` path) that a thread fills with ``data`` and closes."""
    read_end, write_end = os.pipe()
    path = tmp_path / name
    path.symlink_to(f"/proc/self/fd/{read_end}")

    def write() -> None:
        with os.fdopen(write_end, "wb") as fh:
            fh.write(data)

    threading.Thread(target=write, daemon=True).start()
    return path


def _jsonl(n: int) -> bytes:
    return "".join(json.dumps({"id": f"n{i}", "text": f"headline {i}"}) + "\n" for i in range(n)).encode()


def _spools() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("tonewatch-ingest-")}


@pytest.mark.parametrize("n", [100, 20_000])
def test_every_line_of_a_pipe_is_read_once_with_its_number(tmp_path: Path, n: int) -> None:
    before = _spools()
    lines = list(read_file(_pipe(tmp_path, "in.jsonl", _jsonl(n))))
    assert [ln.number for ln in lines] == list(range(1, n + 1))
    assert [ln.data["id"] for ln in lines if ln.data] == [f"n{i}" for i in range(n)]
    assert _spools() == before  # no file written


def test_a_csv_pipe_is_read_as_csv(tmp_path: Path) -> None:
    lines = list(read_file(_pipe(tmp_path, "in.csv", b"id,text\na,Tesco rises\nb,BP falls\n")))
    assert [(ln.number, ln.data) for ln in lines] == [
        (2, {"id": "a", "text": "Tesco rises"}),
        (3, {"id": "b", "text": "BP falls"}),
    ]


def test_a_refused_pipe_names_the_path_given_and_leaves_no_copy(tmp_path: Path) -> None:
    before = _spools()
    with pytest.raises(UnreadableFile, match=r"gzip-compressed: decompress it first \(gunzip -k in.jsonl\)"):
        read_file(_pipe(tmp_path, "in.jsonl", gzip.compress(_jsonl(3))))
    assert _spools() == before


def test_a_pipe_is_opened_once_and_nothing_is_written_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, a pipe was copied to a temporary file first: ``yes`` spooled 1.7 GB in 3.5 s
    and sent nothing, ``/dev/zero`` filled the disk, a killed ingest left the copy behind."""

    def no_temp(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("nothing of a pipe is written to disk")

    monkeypatch.setattr(tempfile, "mkstemp", no_temp)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_temp)
    opened: list[tuple[str, str]] = []
    real_open = Path.open

    def counting_open(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        opened.append((self.name, mode))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting_open)
    lines = list(read_file(_pipe(tmp_path, "in.jsonl", _jsonl(50))))
    assert [ln.number for ln in lines] == list(range(1, 51))
    assert opened == [("in.jsonl", "rb")]
    opened.clear()
    lines = list(read_file(_pipe(tmp_path, "in.csv", b"text\nhi\n")))
    assert [ln.data for ln in lines] == [{"text": "hi"}] and opened == [("in.csv", "rb")]


def _open_fds() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def test_a_pipe_never_read_is_closed_when_dropped(tmp_path: Path) -> None:
    pipe = _pipe(tmp_path, "in.jsonl", _jsonl(3))
    before = _open_fds()
    lines: Iterator[object] | None = read_file(pipe)
    assert _open_fds() == before + 1 and _spools() == set()
    del lines
    assert _open_fds() == before


def test_an_endless_pipe_sends_its_first_lines_before_it_ends(tmp_path: Path) -> None:
    """Lines come out as they arrive: before, nothing came out before the pipe's end (the
    copy), and an endless pipe (``yes``, a live feed) never gave a line."""
    n = 5
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    consumed = threading.Event()
    released: list[bool] = []

    def write() -> None:
        with fifo.open("wb") as fh:
            fh.write(_jsonl(n))
            fh.flush()
            released.append(consumed.wait(10))  # the pipe stays open until n lines were read
            fh.write(b'{"id": "last", "text": "after"}\n')

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    lines = read_file(fifo)
    first = [next(lines) for _ in range(n)]
    consumed.set()
    rest = list(lines)
    writer.join(5)
    assert released == [True], "the first lines came out only at the pipe's end"
    assert [ln.data["id"] for ln in first if ln.data] == [f"n{i}" for i in range(n)]
    assert [(ln.number, ln.data) for ln in rest] == [(n + 1, {"id": "last", "text": "after"})]


def test_a_live_csv_pipe_sends_its_first_rows_before_it_ends(tmp_path: Path) -> None:
    fifo = tmp_path / "feed.csv"
    os.mkfifo(fifo)
    consumed = threading.Event()
    released: list[bool] = []

    def write() -> None:
        with fifo.open("wb") as fh:
            fh.write(b"id,text\na,Tesco rises\n")
            fh.flush()
            released.append(consumed.wait(10))
            fh.write(b"b,BP falls\n")

    threading.Thread(target=write, daemon=True).start()
    lines = read_file(fifo)
    first = next(lines)
    consumed.set()
    assert first.data == {"id": "a", "text": "Tesco rises"}
    assert [ln.data for ln in lines] == [{"id": "b", "text": "BP falls"}] and released == [True]


def test_the_prefix_kept_for_the_checks_is_bounded_and_let_go() -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes
    prefix = sources.PipePrefix(io.BytesIO(data), limit=1_000)
    assert prefix.read(600) == data[:600] and prefix.held == 600
    prefix.rewind(keep=True)  # the next check reads from the first byte too, and on
    assert prefix.read(700) == data[:600] and prefix.read(100) == data[600:700] and prefix.held == 700
    prefix.rewind(keep=True)
    assert prefix.read(600) == data[:600] and prefix.read(600) == data[600:700]  # what is kept, then the pipe
    assert prefix.read(600) == data[700:1_000] and prefix.held == 1_000  # cut at the bound
    with pytest.raises(sources._PrefixFull):
        prefix.read(1)
    assert prefix.held == 1_000
    prefix.rewind()
    assert prefix.read(700) == data[:700] and prefix.held == 1_000
    assert prefix.read(700) == data[700:1_000] and prefix.held == 0  # given again: let go
    rest = io.BufferedReader(prefix).read()
    assert rest == data[1_000:] and prefix.held == 0  # the rest is not kept


def test_the_bound_is_the_longest_look_ahead_of_the_checks() -> None:
    assert sources.PIPE_PREFIX_BYTES >= 4 * (sources.MAX_CSV_LINE_CHARS + 2)  # a CSV header row of 4-byte chars
    assert sources.PIPE_PREFIX_BYTES >= sources.MAX_LINE_BYTES + sources.SKIP_CHUNK_BYTES  # the CR-only check
    assert sources.PIPE_PREFIX_BYTES < 20_000_000


def test_a_csv_header_past_the_bound_is_refused_without_reading_the_pipe_to_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "PIPE_PREFIX_BYTES", 100_000)
    monkeypatch.setattr(sources, "MAX_CSV_LINE_CHARS", 1_000_000)
    fifo = tmp_path / "wide.csv"
    os.mkfifo(fifo)
    stop = threading.Event()

    def write() -> None:
        try:
            with fifo.open("wb") as fh:
                fh.write(b"text")
                while not stop.is_set():  # an endless header row
                    fh.write(b",c" * 1_000)
        except BrokenPipeError:
            pass

    threading.Thread(target=write, daemon=True).start()
    try:
        with pytest.raises(UnreadableFile, match="header row is longer than"):
            read_file(fifo)
    finally:
        stop.set()


def test_a_pipe_without_a_csv_name_is_csv_with_format_csv(tmp_path: Path) -> None:
    """``<(cat f.csv)`` is ``/dev/fd/63``: by its name it was read as JSONL, every row rejected."""
    data = b"id,text\na,Tesco rises\n"
    as_jsonl = list(read_file(_pipe(tmp_path, "63", data)))
    assert as_jsonl and all(ln.data is None for ln in as_jsonl)
    as_csv = list(read_file(_pipe(tmp_path, "62", data), fmt="csv"))
    assert [(ln.number, ln.data) for ln in as_csv] == [(2, {"id": "a", "text": "Tesco rises"})]
    regular = tmp_path / "f.txt"
    regular.write_bytes(data)
    assert [ln.data for ln in read_file(regular, fmt="csv")] == [{"id": "a", "text": "Tesco rises"}]
    jsonl_named_csv = tmp_path / "f.csv"
    jsonl_named_csv.write_bytes(b'{"text": "hi"}\n')
    assert [ln.data for ln in read_file(jsonl_named_csv, fmt="jsonl")] == [{"text": "hi"}]
    with pytest.raises(ValueError, match="format must be one of auto, jsonl, csv"):
        read_file(regular, fmt="xml")
