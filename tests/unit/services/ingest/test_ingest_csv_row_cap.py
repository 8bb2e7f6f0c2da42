"""A CSV row over many lines (a quoted field with line breaks, or a quote never closed) is
bounded like one line: ``MAX_CSV_LINE_CHARS`` for the row's lines together. Before, only
each line was: the row grew with its lines (a quote never closed held up to 8,000,000
characters of the rest of the file, 34 MB, then stopped reading the file; a row of many
multi-line fields held them all). Each test fails on the code before the fix."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from services.ingest import sources
from services.ingest.sources import MAX_CSV_LINE_CHARS, UnreadableFile, read_file

CAP = 1_000
"""The cap the small tests run with (the real one, 4,160,000, needs files of tens of MB)."""


def _lines(path: Path) -> list[tuple[int, dict[str, str] | None, str | None]]:
    return [(ln.number, ln.data, ln.error) for ln in read_file(path)]


def _peak(read: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        read()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _row_too_long(start: int, end: int, cap: int = CAP) -> str:
    return (
        f"row longer than {cap:,} characters: no event that large is accepted "
        f"(lines {start}-{end}: quoted fields with line breaks, or a quote left open up to one on line {end})"
    )


def _never_closed(start: int, end: int) -> str:
    return (
        f"malformed CSV: a quote opened in this row is never closed: lines {start}-{end}, to the end of the file, "
        "read as one field and not sent"
    )


@pytest.fixture
def small_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "MAX_CSV_LINE_CHARS", CAP)


@pytest.mark.usefixtures("small_cap")
@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_a_multi_line_field_up_to_the_cap_is_read_and_one_character_more_rejects_its_row(
    tmp_path: Path, ending: str
) -> None:
    """The row's size counts the line breaks inside its field, not its last line's ending,
    so a one-line row has its line's size; the rows after a rejected one are read, by
    their right line numbers with any line ending."""
    inner = 9  # the field's lines, each ending inside it
    per_line = (CAP - len('a1,""') - inner * len(ending)) // (inner + 1)
    body = ending.join(["y" * per_line] * (inner + 1))
    at_cap = 'a1,"' + body + "z" * (CAP - len('a1,""') - len(body)) + '"'
    over = at_cap[:-1] + 'z"'
    assert len(at_cap) == CAP and at_cap.count(ending) == inner
    f = tmp_path / "rows.csv"
    f.write_bytes(ending.join(["id,text", at_cap, over, "a3,after", ""]).encode())
    assert _lines(f) == [
        (2, {"id": "a1", "text": at_cap[4:-1]}, None),
        (12, None, _row_too_long(12, 21)),
        (22, {"id": "a3", "text": "after"}, None),
    ]


@pytest.mark.usefixtures("small_cap")
def test_a_row_of_many_multi_line_fields_is_cut_at_the_cap_and_not_held(tmp_path: Path) -> None:
    """Before, each field was under csv's limit, so all 50 (5 MB) were held and the row
    read whole: memory grew with the row, whatever the cap on a line."""
    field = '"' + ("y" * 99 + "\n") * 1_000 + '"'  # 100,000 characters over 1,000 lines
    f = tmp_path / "wide.csv"
    f.write_text("id,text\na1" + ("," + field) * 50 + "\na2,after\n")
    last = 2 + 50 * 1_000
    assert _lines(f) == [(2, None, _row_too_long(2, last)), (last + 1, {"id": "a2", "text": "after"}, None)]
    assert _peak(lambda: _lines(f)) < 1_000_000


@pytest.mark.usefixtures("small_cap")
def test_a_quote_left_open_is_skipped_to_the_next_quote_and_the_rows_after_it_are_read(tmp_path: Path) -> None:
    """CSV resyncs at the next quote character (it closes the runaway field); the rows it
    swallowed up to there are one rejected row, named by its first line. Before, under
    csv's own limit, the row was parsed whole (and rejected for the quote that ends it)."""
    swallowed = "".join(f"r{i},plain text\n" for i in range(3, 500))
    f = tmp_path / "open.csv"
    f.write_text('id,text\na1,first\na2,"opens here\n' + swallowed + 'q1,"quoted"\na3,after\n')
    assert _lines(f) == [
        (2, {"id": "a1", "text": "first"}, None),
        (3, None, _row_too_long(3, 501)),
        (502, {"id": "a3", "text": "after"}, None),
    ]


@pytest.mark.usefixtures("small_cap")
def test_a_quote_never_closed_is_skipped_to_the_end_of_the_file_in_bounded_memory(tmp_path: Path) -> None:
    """No later quote: the rest of the file is the field (no row can be told from its
    text), rejected as never closed by its first line. Before, the 5 MB field was held."""
    f = tmp_path / "open.csv"
    f.write_text('id,text\na1,first\na2,"opens here\n' + ("r,plain text " + "z" * 87 + "\n") * 50_000)
    expected = [(2, {"id": "a1", "text": "first"}, None), (3, None, _never_closed(3, 50_003))]
    assert _lines(f) == expected
    assert _peak(lambda: _lines(f)) < 1_000_000


@pytest.mark.usefixtures("small_cap")
def test_a_header_row_over_the_cap_refuses_the_file(tmp_path: Path) -> None:
    f = tmp_path / "header.csv"
    f.write_text('id,"text\n' + ("y" * 99 + "\n") * 20 + '"\na1,x\n')
    with pytest.raises(UnreadableFile, match=r"the header's row \(lines 1-22\) is longer than 1,000 characters"):
        read_file(f)


def test_a_quote_never_closed_in_a_large_file_costs_no_more_than_a_row_at_the_real_cap(tmp_path: Path) -> None:
    """At the real cap: before, the field grew to csv's 8,000,000-character limit (34 MB)
    and reading stopped there, the rows after the quote that ends it lost."""
    runaway = ("r,plain text " + "z" * 986 + "\n") * (3 * MAX_CSV_LINE_CHARS // 1_000)  # 12.5 MB
    n = runaway.count("\n")
    f = tmp_path / "big.csv"
    f.write_text('id,text\na1,first\na2,"opens here\n' + runaway + 'q1,"quoted"\na3,after\n')
    lines: list[tuple[int, dict[str, str] | None, str | None]] = []
    peak = _peak(lambda: lines.extend(_lines(f)))
    assert lines == [
        (2, {"id": "a1", "text": "first"}, None),
        (3, None, _row_too_long(3, n + 4, MAX_CSV_LINE_CHARS)),
        (n + 5, {"id": "a3", "text": "after"}, None),
    ]
    assert peak < 5 * MAX_CSV_LINE_CHARS, peak  # the parse buffer of a row at the cap: 4 bytes a character
