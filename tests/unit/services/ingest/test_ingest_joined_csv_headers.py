"""CSV files with headers joined with ``cat``: the second file's header row was read as a
data row and sent as an event (text ``text``, id ``id``). A later row equal to the header is
skipped (reported as skipped, not rejected: nothing is lost, so the replay still exits 0); a
later header naming other columns, or the same in another order, is rejected, and so are
the rows under it (their fields would go to line 1's columns) up to a header like line 1's."""

from __future__ import annotations

import json
from pathlib import Path

from tw_testing import RecordingProducer

from services.ingest.replay import Pacing, ReplayReport, replay
from services.ingest.sources import REPEATED_HEADER, UNDER_OTHER_HEADER, UNNAMED, read_file
from shared.topics import Topics


async def _replay(path: Path, pacing: Pacing | None = None) -> tuple[ReplayReport, list[dict[str, str]]]:
    producer = RecordingProducer()
    report = await replay(producer, Topics(), read_file(path), "news", pacing or Pacing(), origin=path.name)  # type: ignore[arg-type]
    return report, [json.loads(v) for v in producer.values]


def _joined(tmp_path: Path, *files: str, name: str = "joined.csv") -> Path:
    f = tmp_path / name
    f.write_bytes("".join(files).encode())
    return f


async def test_the_header_of_a_second_file_joined_with_cat_is_skipped_not_sent(tmp_path: Path) -> None:
    f = _joined(tmp_path, "id,text\na1,Acme falls\n", "id,text\nb1,Tesco rises\n", "id,text\n")
    report, sent = await _replay(f)
    assert [(e["id"], e["text"]) for e in sent] == [("a1", "Acme falls"), ("b1", "Tesco rises")]
    assert report.produced == 2
    assert report.rejected == [] and report.rejected_total == 0  # `tonewatch ingest file` exits 0
    assert report.skipped == [(3, REPEATED_HEADER), (5, REPEATED_HEADER)] and report.skipped_total == 2


async def test_a_repeated_header_after_a_byte_order_mark_or_a_blank_line_is_skipped_too(tmp_path: Path) -> None:
    """Files saved with a mark (Excel's "CSV UTF-8"), and with CRLF line endings."""
    f = tmp_path / "marks.csv"
    f.write_bytes(
        b"\xef\xbb\xbftext,source\r\nAcme falls,wire\r\n"
        + b"\r\n"
        + b"\xef\xbb\xbftext,source\r\nTesco rises,\r\n"
        + b'\xef\xbb\xbf"text","source"\r\n'  # quoted: the same cells
    )
    report, sent = await _replay(f)
    assert [e["text"] for e in sent] == ["Acme falls", "Tesco rises"]
    assert report.skipped == [(4, REPEATED_HEADER), (6, REPEATED_HEADER)] and report.rejected == []


async def test_a_repeated_header_is_skipped_in_a_speedup_replay(tmp_path: Path) -> None:
    f = _joined(tmp_path, "text,event_time\nA,2020-01-01T00:00:00Z\n", "text,event_time\nB,2020-01-01T00:01:00Z\n")
    report, sent = await _replay(f, Pacing(speedup=1000.0, backfill_s=3600.0))
    assert sorted(e["text"] for e in sent) == ["A", "B"]
    assert report.skipped == [(3, REPEATED_HEADER)] and report.rejected_total == 0


async def test_a_data_row_that_is_not_the_header_is_still_sent(tmp_path: Path) -> None:
    """Only the header's exact cells are a header: a text that merely reads ``text`` under
    another column layout, or a header cell with spaces, is data or a rejected row as before."""
    f = _joined(tmp_path, "id,text\n", "text,x1\n", "id ,text\n", "a1,text\n")
    report, sent = await _replay(f)
    assert [(e["id"], e["text"]) for e in sent] == [("text", "x1"), ("id ", "text"), ("a1", "text")]
    assert report.skipped == [] and report.rejected == []


async def test_a_later_header_with_other_columns_rejects_itself_and_the_rows_under_it(tmp_path: Path) -> None:
    f = _joined(
        tmp_path,
        "id,text\na1,Acme falls\n",
        "text,id\nTesco rises,b1\nBP slips,b2\n",  # the same columns in another order
        "id,text\nc1,Shell gains\n",  # line 1's header again: read as before
        "text,source,id\nUnilever flat,wire,d1\n",  # other columns
    )
    report, sent = await _replay(f)
    assert [(e["id"], e["text"]) for e in sent] == [("a1", "Acme falls"), ("c1", "Shell gains")]
    assert report.skipped == [(6, REPEATED_HEADER)]
    assert [n for n, _ in report.rejected] == [3, 4, 5, 8, 9] and report.rejected_total == 5
    reasons = dict(report.rejected)
    assert reasons[3] == (
        "a header with line 1's columns in another order (files joined with cat?): it and the rows after it, up to "
        "a header like line 1's, are not sent (their fields would go to line 1's columns); this: 'text', 'id'; "
        "line 1: 'id', 'text'"
    )
    assert reasons[4] == reasons[5] == f"{UNDER_OTHER_HEADER} (line 3): not sent"
    assert reasons[8].startswith("a header with other columns than line 1 (files joined with cat?)")
    assert reasons[8].endswith("this: 'text', 'source', 'id'; line 1: 'id', 'text'")
    assert reasons[9] == f"{UNDER_OTHER_HEADER} (line 8): not sent"


async def test_a_later_header_with_an_unnamed_column_rejects_itself_and_the_rows_under_it(tmp_path: Path) -> None:
    """Files whose rows end in a comma (an unnamed last column): the second file's header was
    read as data (id 'text', text 'id') and its rows by line 1's columns (id 'yo', text '2')."""
    f = _joined(tmp_path, "id,text,\n1,hi,\n", "text,id,\nyo,2,\n")
    report, sent = await _replay(f)
    assert [(e["id"], e["text"]) for e in sent] == [("1", "hi")]
    assert [n for n, _ in report.rejected] == [3, 4] and report.skipped == []
    reasons = dict(report.rejected)
    assert reasons[3].startswith("a header with line 1's columns in another order (files joined with cat?)")
    assert reasons[3].endswith(f"this: 'text', 'id', {UNNAMED}; line 1: 'id', 'text', {UNNAMED}")
    assert reasons[4] == f"{UNDER_OTHER_HEADER} (line 3): not sent"


async def test_a_later_header_with_a_column_no_event_has_rejects_itself_and_the_rows_under_it(
    tmp_path: Path,
) -> None:
    """A column no event has (``notes``), in both files or only the second: the second file's
    header was rejected as a row with a field under an unknown column, and its rows were sent
    with their fields swapped (id 'yo', text '2')."""
    both = _joined(tmp_path, "id,text,notes\n1,hi,\n", "text,id,notes\nyo,2,\n", name="both.csv")
    second = _joined(tmp_path, "id,text,\n1,hi,\n", "text,id,notes\nyo,2,\nbye,3,\n", name="second.csv")
    for f, rejected in ((both, [3, 4]), (second, [3, 4, 5])):
        report, sent = await _replay(f)
        assert [(e["id"], e["text"]) for e in sent] == [("1", "hi")], f.name
        assert [n for n, _ in report.rejected] == rejected, f.name
        reasons = dict(report.rejected)
        assert reasons[3].startswith("a header with "), f.name
        assert reasons[4] == f"{UNDER_OTHER_HEADER} (line 3): not sent", f.name
    report, _ = await _replay(both)
    assert "this: 'text', 'id', 'notes'; line 1: 'id', 'text', 'notes'" in dict(report.rejected)[3]
    assert "in another order" in dict(report.rejected)[3]


async def test_a_line_1_header_again_after_a_header_with_an_unnamed_column_reads_rows_again(tmp_path: Path) -> None:
    f = _joined(tmp_path, "id,text,\n1,hi,\n", "text,,id\nyo,,2\n", "id,text,\n3,ho,\n")
    report, sent = await _replay(f)
    assert [(e["id"], e["text"]) for e in sent] == [("1", "hi"), ("3", "ho")]
    assert [n for n, _ in report.rejected] == [3, 4] and report.skipped == [(5, REPEATED_HEADER)]


async def test_rows_with_text_among_empty_or_unknown_fields_are_still_data(tmp_path: Path) -> None:
    """A row is a header only with ``text`` and another column's name: a lone ``text`` with
    the other fields empty is an event whose text is the word (read as a header it would
    reject the rest of the file), and ``text`` beside values that name no column is data."""
    f = _joined(tmp_path, "id,text,source,\n", ",text,,\n", "a1,text,wire,\n", "text,x1,,\n", "a2,hello,,\n")
    report, sent = await _replay(f)
    assert [(e["text"], e.get("source")) for e in sent] == [
        ("text", None),
        ("text", "wire"),
        ("x1", None),
        ("hello", None),
    ]
    assert [e["id"] for e in sent[1:]] == ["a1", "text", "a2"]  # the first has an id made from its content
    assert report.skipped == [] and report.rejected == []


async def test_a_row_of_text_and_another_column_name_is_a_header(tmp_path: Path) -> None:
    """``text,source`` under ``id,text`` would be an event with id 'text' and text 'source':
    read as the header of a file joined with cat (as before), it and the rows under it are
    rejected rather than sent with their fields in the wrong columns."""
    f = _joined(tmp_path, "id,text\na1,Acme falls\n", "text,source\nTesco rises,wire\n")
    report, sent = await _replay(f)
    assert [(e["id"], e["text"]) for e in sent] == [("a1", "Acme falls")]
    assert [n for n, _ in report.rejected] == [3, 4]
    assert dict(report.rejected)[3].startswith("a header with other columns than line 1 (files joined with cat?)")
