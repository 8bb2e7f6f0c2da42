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
from services.ingest.sources import REPEATED_HEADER, UNDER_OTHER_HEADER, read_file
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
