"""Ingest input review findings: a CSV column without a name in the header, and JSON
nested deep enough that reading it works but deriving its id does not (each test fails on
the code before the fix)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tw_testing import RecordingProducer

from services.ingest.replay import Pacing, ReplayReport, replay
from services.ingest.sources import read_file
from shared.topics import Topics


async def _replay(path: Path) -> tuple[ReplayReport, list[dict[str, str]]]:
    producer = RecordingProducer()
    report = await replay(producer, Topics(), read_file(path), "news", Pacing(), origin=path.name)  # type: ignore[arg-type]
    return report, [json.loads(v) for v in producer.values]


async def test_a_field_under_a_column_the_header_leaves_unnamed_is_rejected_not_dropped(tmp_path: Path) -> None:
    """Before, ``text,`` (a trailing comma in the header) took ``Acme, Inc falls`` (an
    unquoted comma) as the text ``Acme`` and dropped `` Inc falls`` without a word; a field
    under an unnamed column is now an unknown column's, and rejects its row. An unnamed
    column left empty (a trailing comma on every row) is still fine."""
    f = tmp_path / "unnamed.csv"
    f.write_text("text,\nAcme, Inc falls\nTesco rises,\n")
    report, sent = await _replay(f)
    assert [e["text"] for e in sent] == ["Tesco rises"]
    assert report.rejected == [(2, "unknown column 2 (no name in the header): an event has no such field")]
    f.write_text("id,,text,\na1,note,Acme falls,x\n")
    report, sent = await _replay(f)
    assert sent == [] and report.rejected == [
        (2, "unknown columns 2 (no name in the header), 4 (no name in the header): an event has no such field")
    ]


async def test_json_nested_as_deep_as_reading_allows_is_a_rejected_line_not_a_crash(tmp_path: Path) -> None:
    """A line without an id gets one derived from its content (``line_id`` encodes it as
    JSON). Nested just below the depth the reader refuses, it was read, and encoding it a
    few frames deeper raised RecursionError: the replay stopped there with a traceback and
    nothing after the line was sent. Every depth up to and past the limit is now a
    rejected line, and the next line is sent."""
    f = tmp_path / "deep.jsonl"
    limit = sys.getrecursionlimit()
    for depth in range(limit - 80, limit + 5):
        f.write_text('{"text": "x", "a": ' + "[" * depth + "]" * depth + '}\n{"id": "next", "text": "y"}\n')
        report, sent = await _replay(f)
        assert [e["id"] for e in sent] == ["next"], depth
        assert [n for n, _ in report.rejected] == [1], depth
