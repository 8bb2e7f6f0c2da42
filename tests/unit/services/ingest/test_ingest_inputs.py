"""Files ingest must refuse whole, lines it must hold back or reject, and replay options
it must refuse (review findings: each test fails on the code before the fix)."""

from __future__ import annotations

import codecs
import gzip
import json
import math
import tracemalloc
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tw_testing import RecordingProducer

from services.ingest.replay import (
    MAX_REASON_CHARS,
    Pacing,
    ReplayReport,
    _prepared,
    _retime,
    check_run,
    replay,
    run_stamp,
)
from services.ingest.sources import (
    NO_LINE_ENDING,
    Line,
    UnreadableFile,
    read_file,
    utf16_without_bom,
    utf32_without_bom,
)
from shared.events import RawNews
from shared.topics import Topics

CARD, EMAIL = "4111 1111 1111 1111", "jane.doe@example.com"


async def _replay(
    lines: Iterable[Line], pacing: Pacing | None = None, run: int | None = None
) -> tuple[ReplayReport, list[str]]:
    producer = RecordingProducer()
    report = await replay(producer, Topics(), lines, "news", pacing or Pacing(), origin="f", run=run)
    return report, [json.loads(v)["id"] for v in producer.values]


def test_a_csv_whose_first_row_is_data_is_refused_without_showing_its_personal_data(tmp_path: Path) -> None:
    """Before, every row was rejected with the first row's fields as unknown column names:
    the card number and the email in each of 1,000 reasons, and in ``--json``."""
    f = tmp_path / "nohdr.csv"
    f.write_text(f"c1,Hi my card is {CARD} and email {EMAIL}\nc2,second message\n")
    with pytest.raises(UnreadableFile, match="no `text` column in the header") as info:
        read_file(f)  # before the first line is read: nothing is sent
    message = str(info.value)
    assert "'c1'" in message and "[CARD]" in message and CARD not in message and EMAIL not in message
    for header, hint in (("Text,Source", "matched exactly"), ("text;source", "separated by commas")):
        f.write_text(f"{header}\nhello\n")
        with pytest.raises(UnreadableFile, match=hint):
            read_file(f)


async def test_unknown_columns_are_named_by_position_briefly_and_every_reason_is_capped(tmp_path: Path) -> None:
    """Before, a 1.9 MB column name was repeated whole in each row's reason (570 MB of
    reason text for 300 rows)."""
    f = tmp_path / "extra.csv"
    name = f"notes {CARD} " + "x" * 1_900_000
    f.write_text(f"text,{name},title\n" + "".join(f"row {i},n,t\n" for i in range(300)) + "ok,,\n")
    report, ids = await _replay(read_file(f))
    assert len(ids) == 1 and report.rejected_total == 300  # an unknown column left empty is fine
    reason = report.rejected[0][1]
    assert reason.startswith("unknown columns 2 'notes [CARD] xxx") and "…', 3 'title'" in reason, reason
    assert CARD not in reason and len(reason) < 120
    assert sum(len(r) for _, r in report.rejected) < 300 * 120
    long = ReplayReport()
    long.reject(1, "y" * 5_000_000)
    assert len(long.rejected[0][1]) == MAX_REASON_CHARS and long.rejected[0][1].endswith("…")


def test_a_repeated_column_name_is_refused(tmp_path: Path) -> None:
    """Before, ``text,text`` kept the second field and dropped the first without a word."""
    f = tmp_path / "dup.csv"
    f.write_text("text,source,text\nfirst,x,second\n")
    with pytest.raises(UnreadableFile, match="names column 'text' twice \\(columns 1 and 3\\)"):
        read_file(f)
    f.write_text("text,,\nfirst,,\n")  # columns without a name (trailing commas) are not repeats
    assert [ln.data for ln in read_file(f)] == [{"text": "first"}]


@pytest.mark.parametrize(
    ("start", "says"),
    [
        (codecs.BOM_UTF16_LE + "text\n".encode("utf-16-le"), "UTF-16"),
        (codecs.BOM_UTF16_BE + "text\n".encode("utf-16-be"), "UTF-16"),
        (codecs.BOM_UTF32_LE + "text\n".encode("utf-32-le"), "UTF-32"),
        (gzip.compress(b'{"text": "a"}\n'), "gzip-compressed"),
    ],
)
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_utf16_or_compressed_file_is_refused_whole(tmp_path: Path, start: bytes, says: str, suffix: str) -> None:
    """Before, each line was rejected alike: "invalid UTF-8"."""
    f = tmp_path / f"in{suffix}"
    f.write_bytes(start)
    with pytest.raises(UnreadableFile, match=says):
        read_file(f)


_JSONL = '{"id": "n1", "text": "Acme shares rise"}\n{"id": "n2", "text": "Caf\u00e9 \u4e00 \U0001f642"}\n'
_CSV = "id,text,source\r\nc1,Acme shares rise,wire\r\nc2,\u4e94\u4e94\u4e94,wire\r\n"


@pytest.mark.parametrize(("order", "codec"), [("LE", "utf-16-le"), ("BE", "utf-16-be")])
@pytest.mark.parametrize(
    "text",
    [_JSONL, _CSV, _CSV[:8], "text\n" + "\u4e94" * 3000, "{}"],
    ids=["jsonl", "csv", "8-characters", "mostly-cjk", "2-characters"],
)
def test_utf16_without_a_byte_order_mark_is_recognised_by_its_nul_bytes(order: str, codec: str, text: str) -> None:
    assert utf16_without_bom(text.encode(codec)[:4096]) == order


@pytest.mark.parametrize(
    "start",
    [
        _JSONL.encode(),
        _CSV.encode(),
        _JSONL.encode("utf-32-le"),  # three NULs in four: not UTF-16
        _JSONL.encode("utf-32-be"),
        b'{"text": "a\x00b"}\n',  # a stray NUL: that line's problem, not the file's encoding
        b'{"text": "a\x00\x00\x00\x00\x00\x00b"}\n',
        b"\x00" * 4096,
        b"a\x00",  # one character: too little to tell
        b"",
        gzip.compress(b'{"text": "a"}\n' * 100),
    ],
    ids=[
        "utf8-jsonl",
        "utf8-csv",
        "utf32le",
        "utf32be",
        "stray-nul",
        "nul-run",
        "all-nul",
        "1-character",
        "empty",
        "gzip",
    ],
)
def test_text_that_is_not_utf16_is_not_taken_for_it(start: bytes) -> None:
    assert utf16_without_bom(start) is None


@pytest.mark.parametrize(
    ("codec", "says", "iconv"), [("utf-16-le", "little-endian", "UTF-16LE"), ("utf-16-be", "big-endian", "UTF-16BE")]
)
@pytest.mark.parametrize(("suffix", "text"), [(".jsonl", _JSONL), (".csv", _CSV)], ids=["jsonl", "csv"])
def test_a_utf16_file_without_a_byte_order_mark_is_refused_whole(
    tmp_path: Path, codec: str, says: str, iconv: str, suffix: str, text: str
) -> None:
    """Before, a JSONL file's every line was rejected ("malformed JSON") and a CSV was refused
    for a header "without a text column" that was there: ``'t\\x00e\\x00x\\x00t\\x00'``."""
    f = tmp_path / f"in{suffix}"
    f.write_bytes(text.encode(codec))
    with pytest.raises(UnreadableFile, match=f"the file is UTF-16 \\({says}, without a byte-order mark") as info:
        read_file(f)
    assert f"(iconv -f {iconv} -t UTF-8 in{suffix} > utf8{suffix})" in str(info.value)


@pytest.mark.parametrize(("codec", "order"), [("utf-32-le", "LE"), ("utf-32-be", "BE")])
@pytest.mark.parametrize(("suffix", "text"), [(".jsonl", _JSONL), (".csv", _CSV)], ids=["jsonl", "csv"])
def test_a_utf32_file_without_a_byte_order_mark_is_refused_whole(
    tmp_path: Path, codec: str, order: str, suffix: str, text: str
) -> None:
    """Before, every line was rejected alike ("malformed JSON"), or a CSV refused for its header."""
    assert utf32_without_bom(text.encode(codec)) == order
    f = tmp_path / f"in{suffix}"
    f.write_bytes(text.encode(codec))
    with pytest.raises(UnreadableFile, match=r"the file is UTF-32 .*without a byte-order mark") as info:
        read_file(f)
    assert f"(iconv -f UTF-32{order} -t UTF-8 in{suffix} > utf8{suffix})" in str(info.value)


@pytest.mark.parametrize(
    "start",
    [
        _JSONL.encode(),
        _JSONL.encode("utf-16-le"),
        _JSONL.encode("utf-16-be"),
        b"\x00" * 4096,
        b'{"text": "a\x00\x00\x00b"}\n',
        b"a\x00\x00\x00",  # one character: too little to tell
        bytes(range(256)) * 4,
    ],
    ids=["utf8", "utf16le", "utf16be", "all-nul", "nul-run", "1-character", "binary"],
)
def test_text_that_is_not_utf32_is_not_taken_for_it(start: bytes) -> None:
    assert utf32_without_bom(start) is None


def test_a_run_stamp_is_a_time_in_unix_milliseconds_since_2000_up_to_a_day_ahead() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    earliest, latest = run_stamp(datetime(2000, 1, 1, tzinfo=UTC)), run_stamp(now + timedelta(days=1))
    for run in (earliest, run_stamp(now - timedelta(days=400)), run_stamp(now), latest):
        check_run(run, now)
    for run in (0, -1, -run_stamp(now), earliest - 1, latest + 1, run_stamp(now) * 1000, 10**400):
        with pytest.raises(ValueError, match="is not a run stamp: a stamp is the start of a --speedup replay"):
            check_run(run, now)
    with pytest.raises(ValueError, match="a time in seconds\\? a stamp is in milliseconds"):
        check_run(run_stamp(now) // 1000, now)


async def test_a_last_csv_row_without_a_line_ending_is_held_back_and_sent_once_complete(tmp_path: Path) -> None:
    """Before, a file still being written was sent with its last row cut off ("Acme sh"),
    and once complete the rerun sent that row again under a new id: counted twice."""
    f = tmp_path / "grow.csv"
    f.write_text("text,source\nfirst headline,wire\nAcme shares slump,wi")
    first, first_ids = await _replay(read_file(f))
    assert first.rejected == [(3, NO_LINE_ENDING)] and len(first_ids) == 1
    f.write_text("text,source\nfirst headline,wire\nAcme shares slump,wire\n")
    second, second_ids = await _replay(read_file(f))
    assert second.rejected_total == 0 and second_ids[0] == first_ids[0] and len(set(second_ids)) == 2
    f.write_text('text,source\nfirst,wire\n"two\nlines",wire')  # a quoted field ending the file
    assert [(ln.number, ln.error) for ln in read_file(f)] == [(2, None), (3, NO_LINE_ENDING)]
    f.write_bytes(b'text,source\r"a",x\r"b",y\r')  # old Mac line endings: every row ends
    assert [ln.data for ln in read_file(f)] == [{"text": "a", "source": "x"}, {"text": "b", "source": "y"}]


def test_a_last_jsonl_line_without_a_newline_is_sent_only_when_a_whole_object(tmp_path: Path) -> None:
    """A JSON object is complete at its closing brace, so a hand-written file's last line
    is sent; a line cut off while being written is reported as such."""
    f = tmp_path / "grow.jsonl"
    f.write_text('{"text": "a"}\r\n{"text": "b"}')
    assert [ln.data for ln in read_file(f)] == [{"text": "a"}, {"text": "b"}]
    f.write_text('{"text": "a"}\n{"text": "Acme sh')
    lines = list(read_file(f))
    assert lines[0].data == {"text": "a"} and lines[1].number == 2 and lines[1].data is None
    assert (lines[1].error or "").startswith(NO_LINE_ENDING)


def test_a_csv_row_with_fewer_fields_than_the_header_is_rejected_with_a_reason(tmp_path: Path) -> None:
    """Before, a row cut by an unquoted line break was sent cut short ("Profits up") and its
    rest sent as an event of its own (id " and down", text "reuters")."""
    f = tmp_path / "short.csv"
    f.write_text("id,text,source\nn1,Profits up\n and down,reuters\nn2,ok,\n")
    fewer = "malformed CSV: 2 fields but the header has 3"
    lines = [(ln.number, ln.data, (ln.error or "")[: len(fewer)]) for ln in read_file(f)]
    assert lines == [(2, None, fewer), (3, None, fewer), (4, {"id": "n2", "text": "ok"}, "")]


async def test_a_line_repeating_an_earlier_id_is_rejected_naming_that_line(tmp_path: Path) -> None:
    """Before, both were produced and reported, and the pipeline dropped the second."""
    f = tmp_path / "dupid.jsonl"
    f.write_text(
        '{"id": "n1", "text": "Acme beats estimates"}\n{"text": "no id"}\n{"text": "no id"}\n'
        '{"id": "n1", "text": "Globex files for bankruptcy"}\n'
    )
    for pacing in (Pacing(), Pacing(speedup=1e9)):
        report, ids = await _replay(read_file(f), pacing)
        assert len(ids) == 3 and [i.split("@")[0] for i in ids].count("n1") == 1  # lines without ids both sent
        assert report.rejected == [(4, "id: line 1 has the same id (the pipeline keeps one event per id); not sent")]


def test_the_ids_kept_to_find_repeats_cost_about_130_bytes_each() -> None:
    lines = (Line(i, {"id": f"reuters-2020-{i:08d}", "text": "x"}) for i in range(1, 50_001))
    report = ReplayReport()
    tracemalloc.start()
    try:
        for _ in _prepared(lines, "news", report, "f"):
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.rejected_total == 0 and peak < 50_000 * 200


async def test_a_retimed_event_outside_the_contract_years_is_rejected_not_produced(tmp_path: Path) -> None:
    """Before, a file spanning 1900-8999 replayed with --speedup 1 produced an event of 9125."""
    f = tmp_path / "span.jsonl"
    f.write_text(
        '{"id": "a", "text": "a", "event_time": "1900-01-02T00:00:00Z"}\n'
        '{"id": "b", "text": "b", "event_time": "8999-01-01T00:00:00Z"}\n'
    )
    report, ids = await _replay(read_file(f), Pacing(speedup=1.0))
    assert [i.split("@")[0] for i in ids] == ["a"] and report.rejected_total == 1
    assert report.rejected[0][0] == 2 and "moved to after 8999" in report.rejected[0][1]
    events = [RawNews(id=e, text=e, event_time=datetime(y, 1, 2, tzinfo=UTC)) for e, y in (("x", 1900), ("y", 8999))]
    out = ReplayReport()
    assert len(_retime(events, 1.0, datetime(2026, 1, 1, tzinfo=UTC), numbers=[7, 9], report=out)) == 1
    assert [n for n, _ in out.rejected] == [9]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"speedup": math.nan}, "--speedup must be a finite number"),
        ({"rate": math.nan}, "--rate must be a finite number"),
        ({"speedup": 1e9, "backfill_s": math.inf}, "--backfill must be a finite number"),
        ({"speedup": 1.0, "backfill_s": 1e12}, "--backfill must be at most"),
        ({"speedup": 1e-12}, "--speedup must be at least"),
        ({"rate": 1e-300}, "--rate must be at least"),
    ],
)
def test_pacing_options_outside_sensible_bounds_are_refused(options: dict[str, float], says: str) -> None:
    """Before: tracebacks (year -29662 out of range, OverflowError), or ``--rate nan``
    sending unpaced."""
    with pytest.raises(ValueError, match=says):
        Pacing(**options)


async def test_a_retimed_replay_reports_its_run_and_a_given_run_is_reused() -> None:
    """Before, the stamp was never told: a replay cut short could not be resumed."""
    lines = [Line(1, {"id": "s1", "text": "a"}), Line(2, {"id": "s2", "text": "b"})]
    report, ids = await _replay(lines, Pacing(speedup=1e9))
    assert report.run is not None and ids == [f"s1@{report.run}", f"s2@{report.run}"]
    again, again_ids = await _replay(lines, Pacing(speedup=1e9), run=report.run)
    assert again.run == report.run and again_ids == ids
    assert (await _replay(lines))[0].run is None


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_a_finished_file_without_a_final_line_break_is_sent_whole_with_complete(tmp_path: Path, ending: str) -> None:
    """Held back by default (it may still be growing), the last row of a finished file
    could never be sent without editing the file: ``complete`` reads it like the others."""
    f = tmp_path / "done.csv"
    f.write_text(ending.join(["id,text", "a,hello", "b,world"]), encoding="utf-8", newline="")
    assert [(ln.number, ln.error) for ln in read_file(f)] == [(2, None), (3, NO_LINE_ENDING)]
    assert [(ln.number, ln.data) for ln in read_file(f, complete=True)] == [
        (2, {"id": "a", "text": "hello"}),
        (3, {"id": "b", "text": "world"}),
    ]
    j = tmp_path / "done.jsonl"
    j.write_text('{"id": "a", "text": "hello"}\n{"id": "b", "text": "wor', encoding="utf-8")
    assert (list(read_file(j))[1].error or "").startswith(NO_LINE_ENDING)
    assert (list(read_file(j, complete=True))[1].error or "").startswith("malformed JSON")
