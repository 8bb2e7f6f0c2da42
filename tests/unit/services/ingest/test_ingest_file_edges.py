"""Files at the edges of what ``ingest file`` reads: a CSV line too long to hold, a
byte-order mark inside the file (two files joined with ``cat``), and old Mac line endings
(each test fails on the code before the fix)."""

from __future__ import annotations

import codecs
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import ingest as cli
from services.ingest.replay import ReplayReport
from services.ingest.sources import MAX_CSV_LINE_CHARS, UnreadableFile, read_file

CAP = MAX_CSV_LINE_CHARS
TOO_LONG = f"line longer than {CAP:,} characters: no event that large is accepted"


def _lines(path: Path) -> list[tuple[int, dict[str, str] | None, str | None]]:
    return [(ln.number, ln.data, ln.error) for ln in read_file(path)]


def _write(path: Path, *lines: str, ending: str = "\n") -> Path:
    path.write_bytes("".join(line + ending for line in lines).encode())
    return path


@pytest.mark.parametrize(
    "long_row",
    [
        pytest.param("a2," + "y" * (3 * CAP), id="unquoted-past-the-parse-limit"),  # before: reading stopped
        pytest.param("a2," + "y," * CAP, id="millions-of-fields"),  # before: all of them in a list
        pytest.param('a2,"' + "y" * CAP + '"', id="quoted-closed-on-its-line"),
        pytest.param('a2,5" screen ' + "y" * CAP, id="a-quote-inside-an-unquoted-field"),
        pytest.param('a2,"x"y' + "y" * CAP + '"', id="a-stray-quote-ends-the-row-at-its-line"),
    ],
)
def test_a_csv_line_over_the_cap_is_rejected_unread_and_the_next_rows_are_read(tmp_path: Path, long_row: str) -> None:
    f = _write(tmp_path / "long.csv", "id,text", "a1,first", long_row, "a3,third")
    first, third = {"id": "a1", "text": "first"}, {"id": "a3", "text": "third"}
    assert _lines(f) == [(2, first, None), (3, None, TOO_LONG), (4, third, None)]


def test_a_long_line_inside_a_quoted_field_rejects_the_row_it_belongs_to_and_reading_goes_on_after_it(
    tmp_path: Path,
) -> None:
    """The field's lines stay one row: the line over the cap is not parsed, the row that
    holds it is rejected with every line it took, and the quote's end is still found."""
    f = _write(tmp_path / "span.csv", "id,text", 'a1,"opens', "y" * (CAP + 1), 'closes"', "a2,next")
    assert _lines(f) == [(2, None, f"{TOO_LONG} (line 3 of lines 2-4)"), (5, {"id": "a2", "text": "next"}, None)]
    # a quote opened on the long line itself, closed on a later one
    f = _write(tmp_path / "opens.csv", "id,text", 'a1,"' + "y" * (CAP + 1), 'closes"', "a2,next")
    assert _lines(f) == [(2, None, f"{TOO_LONG} (line 2 of lines 2-3)"), (4, {"id": "a2", "text": "next"}, None)]
    # never closed: the existing rule (the rest of the file is that field) still applies
    f = _write(tmp_path / "open.csv", "id,text", "a0,ok", 'a1,"' + "y" * (CAP + 1), "a2,more")
    lines = _lines(f)
    assert lines[0] == (2, {"id": "a0", "text": "ok"}, None) and len(lines) == 2 and lines[1][0] == 3
    assert "a quote opened in this row is never closed: lines 3-4" in (lines[1][2] or "")


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("extra", [-1, 0, 1, 2])
def test_line_numbers_stay_right_around_the_cap_with_any_line_ending(tmp_path: Path, ending: str, extra: int) -> None:
    """``extra`` characters past the cap: a line of exactly the cap is parsed (its field is
    then too large), one character more is not; CRLF cut between its two characters by the
    cap is still one line ending."""
    f = _write(tmp_path / "edge.csv", "id,text", "a1," + "y" * (CAP - 3 + extra), "a3,third", ending=ending)
    lines = _lines(f)
    assert [n for n, _, _ in lines] == [2, 3] and lines[1][1] == {"id": "a3", "text": "third"}
    assert lines[0][2] == (TOO_LONG if extra > 0 else "malformed CSV: field larger than field limit (2,000,000)")


def test_a_very_long_csv_line_is_not_held_in_memory(tmp_path: Path) -> None:
    f = _write(tmp_path / "huge.csv", "id,text", "a1," + "y" * (10 * CAP), "a2,after")
    tracemalloc.start()
    try:
        lines = _lines(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines == [(2, None, TOO_LONG), (3, {"id": "a2", "text": "after"}, None)]
    assert peak < 4 * CAP, peak  # the line is 41 MB; before, it was read whole (and parsed)


def test_a_byte_order_mark_starting_a_later_jsonl_line_is_skipped(tmp_path: Path) -> None:
    """``cat a.jsonl b.jsonl`` of two files saved with a mark: before, b's first line was
    rejected ("Unexpected UTF-8 BOM")."""
    bom = codecs.BOM_UTF8
    f = tmp_path / "joined.jsonl"
    f.write_bytes(bom + b'{"text": "a"}\n' + bom + b'{"text": "b"}\r\n' + bom + b"\n" + bom + b'{"text": "c"}')
    assert _lines(f) == [(1, {"text": "a"}, None), (2, {"text": "b"}, None), (4, {"text": "c"}, None)]


def test_a_byte_order_mark_starting_a_csv_row_is_skipped_but_kept_inside_a_field(tmp_path: Path) -> None:
    """Before, the mark became part of the row's first field (an id ``\\ufeffa2``)."""
    f = tmp_path / "joined.csv"
    f.write_text('\ufeffid,text\na1,x\n\ufeffa2,y\n\ufeff\na3,"two\n\ufefflines"\n', encoding="utf-8")
    assert _lines(f) == [
        (2, {"id": "a1", "text": "x"}, None),
        (3, {"id": "a2", "text": "y"}, None),
        (5, {"id": "a3", "text": "two\n\ufefflines"}, None),
    ]


def test_a_jsonl_file_with_cr_only_line_endings_is_refused_whole(tmp_path: Path) -> None:
    """Before, it was one line 1, rejected ("malformed JSON: Extra data"): nothing sent."""
    f = tmp_path / "mac.jsonl"
    f.write_bytes(b'{"text": "a"}\r{"text": "b"}\r')
    with pytest.raises(UnreadableFile, match=r"line endings are CR only .*tr '\\r' '\\n' < mac.jsonl > unix.jsonl"):
        read_file(f)
    f.write_bytes(b'{"text": "' + b"y" * 100_000 + b'"}\r{"text": "b"}\r')  # a first line past the first 4 KiB
    with pytest.raises(UnreadableFile, match="line endings are CR only"):
        read_file(f)


def test_files_with_a_cr_that_is_not_a_line_ending_are_still_read(tmp_path: Path) -> None:
    f = tmp_path / "one.jsonl"
    f.write_bytes(b'{"text": "a"}\r')  # one line, ended by CR
    assert _lines(f) == [(1, {"text": "a"}, None)]
    f.write_bytes(b'{"text": "a",\r"id": "x"}\n{"text": "b"}\n')  # CR as JSON whitespace
    assert _lines(f) == [(1, {"text": "a", "id": "x"}, None), (2, {"text": "b"}, None)]
    f.write_bytes(b'{"text": "a"}\r\n{"text": "b"}\r\n')
    assert _lines(f) == [(1, {"text": "a"}, None), (2, {"text": "b"}, None)]
    c = tmp_path / "mac.csv"  # CSV is read with universal newlines: CR alone ends a row
    c.write_bytes(b"id,text\ra1,x\ra2,y\r")
    assert _lines(c) == [(2, {"id": "a1", "text": "x"}, None), (3, {"id": "a2", "text": "y"}, None)]


def _no_replay(*args: object, **kwargs: object) -> ReplayReport:
    raise AssertionError("a refused file must not reach Kafka")


def test_the_cli_refuses_a_cr_only_jsonl_file_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "mac.jsonl"
    f.write_bytes(b'{"text": "a"}\r{"text": "b"}\r')
    monkeypatch.setattr(cli, "_replay", _no_replay)
    result = CliRunner().invoke(cli.app, ["file", str(f), "--stream", "news"])
    assert result.exit_code == 2, result.output
    assert " ".join(result.output.split()).startswith("error: mac.jsonl: line endings are CR only"), result.output
