"""``read_file`` on a path that is not a regular file (``<(gunzip -c f.jsonl.gz)``,
``/dev/stdin``): before, its checks each opened the path again, and on a pipe they
consumed the lines (100 lines: 0 read; 20,000: about 1,200 lost without a word, the line
numbers shifted). A pipe is now read once, into a temporary file that is deleted after."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

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
    assert _spools() == before  # the temporary copy is gone


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


def test_a_pipe_is_spooled_in_chunks_and_a_regular_file_is_not_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy is streamed (no read of the whole pipe at once); a regular file is read in place."""
    sizes: list[int] = []
    real = sources.shutil.copyfileobj

    def copy(src: object, dst: object, length: int = 0) -> None:
        sizes.append(length)
        real(src, dst, length)  # type: ignore[arg-type]

    monkeypatch.setattr(sources.shutil, "copyfileobj", copy)
    regular = tmp_path / "plain.jsonl"
    regular.write_bytes(_jsonl(2))
    assert len(list(read_file(regular))) == 2 and sizes == []
    assert len(list(read_file(_pipe(tmp_path, "in.jsonl", _jsonl(2))))) == 2
    assert sizes == [sources.SKIP_CHUNK_BYTES]


def test_a_spool_never_read_is_deleted_when_dropped(tmp_path: Path) -> None:
    before = _spools()
    lines: Iterator[object] | None = read_file(_pipe(tmp_path, "in.jsonl", _jsonl(3)))
    assert len(_spools() - before) == 1
    del lines
    assert _spools() == before
