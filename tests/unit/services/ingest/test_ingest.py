from __future__ import annotations

import asyncio
import codecs
import csv
import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.ingest import sources
from services.ingest.produce import line_id, prepare
from services.ingest.replay import MAX_REJECTIONS_KEPT, Pacing, ReplayReport, _retime, replay, run_id
from services.ingest.sources import Line, read_file
from shared.events import MAX_EVENT_BYTES, MAX_TEXT_CHARS, InvalidEvent, RawChat, RawNews
from shared.topics import Topics


def test_prepare_assigns_id_and_time() -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    e = prepare({"text": "BP rallies"}, "news", now=now)
    assert isinstance(e, RawNews) and e.id and e.event_time == now
    assert prepare({"id": "x1", "text": "hi", "conversation_id": "c"}, "chat").id == "x1"


def test_prepare_rejects_with_field_errors() -> None:
    with pytest.raises(InvalidEvent, match="conversation_id"):
        prepare({"text": "no conversation"}, "chat")
    with pytest.raises(InvalidEvent, match="stream"):
        prepare({"text": "x", "stream": "chat"}, "news")


def test_prepare_treats_every_unknown_field_alike() -> None:
    """``offset_s`` (a field of the demo's chat file) was dropped without a word while any
    other unknown field was refused: a user's field is never silently lost."""
    for field in ("offset_s", "colour"):
        with pytest.raises(InvalidEvent, match=field):
            prepare({"text": "BP rallies", field: 3}, "news")


def test_demo_chats_are_valid_events_in_file_order() -> None:
    chats = sources.demo_chats()
    assert len(chats) >= 100
    assert all(isinstance(prepare(c, "chat"), RawChat) for c in chats)
    offsets = [json.loads(ln)["offset_s"] for ln in sources.DEMO_CHATS.read_text().splitlines() if ln.strip()]
    assert offsets == sorted(offsets)


def test_read_file_jsonl_and_csv(tmp_path: Path) -> None:
    jl = tmp_path / "a.jsonl"
    jl.write_bytes(b'{"text": "ok"}\n\nnot json\n[1]\n\xff\n')
    lines = list(read_file(jl))
    assert [ln.number for ln in lines] == [1, 3, 4, 5]
    assert lines[0].data == {"text": "ok"}
    assert [ln.error is not None for ln in lines] == [False, True, True, True]
    csv_file = tmp_path / "b.csv"
    csv_file.write_text("id,text\nn1,Tesco profits up\nn2,\n")
    rows = list(read_file(csv_file))
    assert rows[0].data == {"id": "n1", "text": "Tesco profits up"} and rows[1].data == {"id": "n2"}


def test_a_bad_csv_row_is_rejected_alone_and_reading_goes_on(tmp_path: Path) -> None:
    """Before, a row with a Latin-1 byte or a field over 131,072 characters raised and
    ended the replay half-way, with no report."""
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(b"text\nok\ncaf\xe9 closes\nfine\n")
    assert [(ln.number, ln.data, ln.error) for ln in read_file(latin1)] == [
        (2, {"text": "ok"}, None),
        (3, None, "invalid UTF-8"),
        (4, {"text": "fine"}, None),
    ]
    big = tmp_path / "big.csv"
    big.write_text("text\n" + "x" * 500_000 + "\n" + "y" * 3_000_000 + "\nafter\n")
    lines = list(read_file(big))
    assert [ln.number for ln in lines] == [2, 3, 4]
    assert lines[0].data == {"text": "x" * 500_000}  # within an event's 1,000,000 characters
    assert lines[1].error is not None and "field larger than field limit" in lines[1].error
    assert lines[2].data == {"text": "after"}


def test_a_quoted_field_over_the_limit_does_not_turn_its_own_lines_into_rows(tmp_path: Path) -> None:
    """csv gave up inside the quoted field and read on from there: the field's own line
    `r9,injected row` came out as an event, and r3 was swallowed."""
    f = tmp_path / "quoted.csv"
    f.write_text('id,text\nr1,ok one\nr2,"' + "x" * 2_000_001 + '\nr9,injected row\n"\nr3,ok three\n')
    lines = list(read_file(f))
    assert [(ln.number, ln.data) for ln in lines] == [
        (2, {"id": "r1", "text": "ok one"}),
        (3, None),
        (6, {"id": "r3", "text": "ok three"}),
    ]
    assert lines[1].error is not None and "field larger than field limit" in lines[1].error


def test_a_field_past_what_can_be_parsed_stops_the_file_instead_of_misreading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "CSV_PARSE_LIMIT", 1_000)
    monkeypatch.setattr(sources, "CSV_FIELD_LIMIT", 100)
    f = tmp_path / "unclosed.csv"
    f.write_text('id,text\nr1,ok\nr2,"' + "x" * 5_000 + "\nr9,injected\n")
    before = csv.field_size_limit()
    try:
        lines = list(read_file(f))
    finally:
        csv.field_size_limit(before)
    assert [ln.data for ln in lines][:1] == [{"id": "r1", "text": "ok"}]
    assert len(lines) == 2 and lines[1].data is None and "stopping here" in (lines[1].error or "")


def test_a_csv_with_a_byte_order_mark_reads_its_header(tmp_path: Path) -> None:
    bom = tmp_path / "excel.csv"
    bom.write_bytes("\ufeffid,text\nn1,hello\n".encode())  # Excel's "CSV UTF-8"
    assert [ln.data for ln in read_file(bom)] == [{"id": "n1", "text": "hello"}]


def test_a_json_integer_too_long_to_convert_is_a_rejected_line(tmp_path: Path) -> None:
    jl = tmp_path / "long.jsonl"
    jl.write_text('{"text": "x", "n": ' + "1" * 5000 + '}\n{"text": "ok"}\n')
    lines = list(read_file(jl))
    assert lines[0].error is not None and lines[0].error.startswith("malformed JSON")
    assert lines[1].data == {"text": "ok"}


def test_speedup_compresses_gaps_and_moves_times_to_now() -> None:
    base = datetime(2020, 1, 1, tzinfo=UTC)
    events = [RawNews(id=f"e{i}", event_time=base.replace(hour=i), text="x") for i in (0, 1, 3)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    sched = _retime(events, 3600.0, start)
    assert [round(o, 3) for o, _ in sched] == [0.0, 1.0, 3.0]
    assert [e.event_time.second for _, e in sched] == [0, 1, 3]


def test_backfill_puts_the_start_of_the_timeline_in_the_past_and_sends_it_at_once() -> None:
    base = datetime(2020, 1, 1, tzinfo=UTC)
    events = [RawNews(id=f"e{i}", event_time=base.replace(hour=i), text="x") for i in (0, 1, 3, 5)]
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    sched = _retime(events, 3600.0, now, backfill_s=2.0)
    assert [round(o, 3) for o, _ in sched] == [0.0, 0.0, 1.0, 3.0]
    assert [(e.event_time - now).total_seconds() for _, e in sched] == [-2.0, -1.0, 1.0, 3.0]
    # the gaps between event times are those of the plain speed-up
    plain = _retime(events, 3600.0, now)
    assert [e.event_time - now for _, e in plain] == [e.event_time - now + timedelta(seconds=2) for _, e in sched]


def test_pacing_validation() -> None:
    with pytest.raises(ValueError, match="either"):
        Pacing(rate=1, speedup=2)
    with pytest.raises(ValueError, match="positive"):
        Pacing(rate=0)
    with pytest.raises(ValueError, match="needs --speedup"):
        Pacing(rate=5, backfill_s=60)
    with pytest.raises(ValueError, match="negative"):
        Pacing(speedup=5, backfill_s=-1)


def test_chat_type() -> None:
    assert isinstance(prepare({"text": "hi", "conversation_id": "c1"}, "chat"), RawChat)


def test_prepare_refuses_an_event_kafka_cannot_carry() -> None:
    assert len(prepare({"text": "x" * MAX_TEXT_CHARS}, "news").to_bytes()) <= MAX_EVENT_BYTES
    for text in ("é" * 600_000, "🙂" * 300_000):
        with pytest.raises(InvalidEvent, match="bytes once encoded") as info:
            prepare({"text": text, "conversation_id": "c"}, "chat")
        assert info.value.error_class == "EventTooLarge"


class _Producer:
    """Records what it is given, acknowledging at once (pure logic: no broker)."""

    def __init__(self, pulled: list[int]) -> None:
        self.pulled, self.pulled_at_first_send = pulled, -1
        self.values: list[bytes] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        if self.pulled_at_first_send < 0:
            self.pulled_at_first_send = self.pulled[0]
        self.values.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _lines(n: int, pulled: list[int], bad_every: int = 0) -> Iterator[Line]:
    for i in range(1, n + 1):
        pulled[0] = i
        bad = bad_every and i % bad_every == 0
        yield Line(i, None, "malformed JSON: x") if bad else Line(i, {"id": f"s{i}", "text": f"headline {i}"})


async def test_unpaced_and_rated_replays_stream_the_input() -> None:
    for pacing in (Pacing(), Pacing(rate=100_000)):
        pulled = [0]
        producer = _Producer(pulled)
        report = await replay(producer, Topics(), _lines(5_000, pulled), "news", pacing, origin="t")  # type: ignore[arg-type]
        assert report.produced == 5_000 and len(producer.values) == 5_000
        assert 0 < producer.pulled_at_first_send <= 201  # one chunk read ahead, not the whole input


async def test_rejections_are_counted_but_only_the_first_thousand_kept() -> None:
    pulled = [0]
    lines = _lines(3_000, pulled, bad_every=2)
    report = await replay(_Producer(pulled), Topics(), lines, "news", Pacing(), origin="t")  # type: ignore[arg-type]
    assert report.produced == 1_500 and report.rejected_total == 1_500
    assert len(report.rejected) == MAX_REJECTIONS_KEPT and report.rejected[0] == (2, "malformed JSON: x")


def test_run_id_stays_within_the_event_id_contract() -> None:
    assert run_id("guardian-7", 1_767_225_600_000) == "guardian-7@1767225600000"
    long_a, long_b = "a" * 127 + "x", "a" * 127 + "y"
    ids = {run_id(long_a, 1), run_id(long_b, 1), run_id(long_a, 2)}
    assert len(ids) == 3  # distinct originals and runs stay distinct when cut
    for i in ids:  # a valid id of the contract
        assert len(i) <= 128
        RawNews(id=i, event_time=datetime(2026, 1, 1, tzinfo=UTC), text="x")


async def test_a_retimed_replay_stamps_ids_with_its_run_and_others_keep_them() -> None:
    """Before, ``--speedup`` kept the ids: a second replay of the same file was dropped by
    the aggregator's ledger. Each run now has its own ids; an unretimed replay keeps them."""

    async def ids(pacing: Pacing, run: int | None = None) -> list[str]:
        pulled = [0]
        producer = _Producer(pulled)
        await replay(producer, Topics(), _lines(3, pulled), "news", pacing, origin="t", run=run)  # type: ignore[arg-type]
        return [json.loads(v)["id"] for v in producer.values]

    first = await ids(Pacing(speedup=1e9))
    await asyncio.sleep(0.002)
    second = await ids(Pacing(speedup=1e9))
    assert [i.split("@")[0] for i in first] == [i.split("@")[0] for i in second] == ["s1", "s2", "s3"]
    assert len({i.split("@")[1] for i in first}) == 1 and set(first).isdisjoint(second)
    assert await ids(Pacing(rate=1e6)) == await ids(Pacing()) == ["s1", "s2", "s3"]
    assert await ids(Pacing(rate=1e6), run=42) == ["s1@42", "s2@42", "s3@42"]


def test_the_demo_stamps_news_and_chats_with_one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's ids are fixed (``guardian-{i}``, ``{conversation}-{seq}``) and its times
    are now: both replays get the run's stamp, so a second ``scripts/demo`` counts again."""
    from typer.testing import CliRunner

    from services.cli import ingest as cli

    calls: list[tuple[str, int | None]] = []

    async def fake_replay(
        lines: Any, stream: str, pacing: Pacing, label: str, total: int | None = None, run: int | None = None
    ) -> ReplayReport:
        calls.append((stream, run))
        return ReplayReport()

    news = [{"id": "guardian-0", "text": "x", "event_time": "2020-01-01T00:00:00Z"}]
    monkeypatch.setattr(cli, "guardian_news", lambda: news)
    monkeypatch.setattr(cli, "_replay", fake_replay)
    result = CliRunner().invoke(cli.app, ["demo"])
    assert result.exit_code == 0, result.output
    assert sorted(s for s, _ in calls) == ["chat", "news"]
    assert calls[0][1] is not None and calls[0][1] == calls[1][1]


def test_json_nested_too_deeply_is_a_rejected_line_and_reading_goes_on(tmp_path: Path) -> None:
    """Before, the decoder's RecursionError escaped: the ingest aborted, later lines unsent."""
    jl = tmp_path / "deep.jsonl"
    deep_list = "[" * 200_000 + "]" * 200_000
    deep_object = '{"a":' * 200_000 + "1" + "}" * 200_000
    jl.write_text(f'{{"text": "a"}}\n{deep_list}\n{deep_object}\n{{"text": "b"}}\n')
    assert [(ln.number, ln.data, ln.error) for ln in read_file(jl)] == [
        (1, {"text": "a"}, None),
        (2, None, "malformed JSON: nested too deeply"),
        (3, None, "malformed JSON: nested too deeply"),
        (4, {"text": "b"}, None),
    ]


def test_a_csv_row_with_more_fields_than_the_header_is_rejected(tmp_path: Path) -> None:
    """Before, the fields past the header were dropped silently (``reuters`` lost, the row
    accepted cut short)."""
    f = tmp_path / "comma.csv"
    f.write_text('id,text,source\nn1,Profits up, shares down,reuters\nn2,"Profits up, shares down",reuters\nn3,short\n')
    assert [(ln.number, ln.data, ln.error) for ln in read_file(f)] == [
        (2, None, "malformed CSV: 4 fields but the header has 3 (quote a field that holds a comma)"),
        (3, {"id": "n2", "text": "Profits up, shares down", "source": "reuters"}, None),
        (4, None, "malformed CSV: 2 fields but the header has 3 (a line break in an unquoted field?)"),  # was accepted
    ]


def test_csv_rows_are_numbered_by_their_physical_line_after_blank_lines(tmp_path: Path) -> None:
    """Before, blank lines were not counted: a bad row on line 5 was reported as line 3."""
    f = tmp_path / "blanks.csv"
    f.write_text('id,text,source\nn0,ok,x\n\n\nn1,Profits up, shares down,reuters\n\n"n2","two\nlines",y\nn3,\xff,z\n')
    f.write_bytes(f.read_bytes().replace("\xff".encode(), b"\xff"))
    assert [(ln.number, ln.data is not None) for ln in read_file(f)] == [(2, True), (5, False), (7, True), (9, False)]
    lines = list(read_file(f))
    assert lines[1].error is not None and "4 fields" in lines[1].error and lines[3].error == "invalid UTF-8"
    assert lines[2].data == {"id": "n2", "text": "two\nlines", "source": "y"}


def test_csv_quote_errors_are_reported_by_line_instead_of_swallowing_rows(tmp_path: Path) -> None:
    """Before, csv read leniently: an unclosed quote joined every row after it to n1's text
    (``produced: 1, rejected: 0``), and ``"Acme says "no" to offer"`` was sent as
    ``Acme says no" to offer"``."""
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_text("id,text\nn1,\"Acme 12'' pizza\nn2,Acme shares rise\nn3,...\nn4,ok\n")
    assert [(ln.number, ln.data, ln.error) for ln in read_file(unclosed)] == [
        (
            2,
            None,
            "malformed CSV: a quote opened in this row is never closed: lines 2-5, to the end of the file, "
            "read as one field and not sent",
        )
    ]
    stray = tmp_path / "stray.csv"
    stray.write_text(
        'id,text\nr1,"Acme says "no" to offer"\nr2,ok\nr3,"Acme 12\'\' pizza\nr4,"closed here"\nr5,fine\n'
        'r6,Acme 12" pizza\nr7,"Acme says ""no"""\n'
    )
    doubled = ': a quote inside a quoted field is written twice ("")'
    assert [(ln.number, ln.data, ln.error) for ln in read_file(stray)] == [
        (2, None, f"malformed CSV: ',' expected after '\"'{doubled} (line 2 not sent)"),
        (3, {"id": "r2", "text": "ok"}, None),
        (4, None, f"malformed CSV: ',' expected after '\"'{doubled} (lines 4-5 not sent)"),
        (6, {"id": "r5", "text": "fine"}, None),
        (7, {"id": "r6", "text": 'Acme 12" pizza'}, None),  # a quote inside an unquoted field is text
        (8, {"id": "r7", "text": 'Acme says "no"'}, None),
    ]


def test_a_jsonl_file_with_a_byte_order_mark_keeps_its_first_line(tmp_path: Path) -> None:
    """Before, line 1 was rejected: "Unexpected UTF-8 BOM"."""
    f = tmp_path / "bom.jsonl"
    f.write_bytes(codecs.BOM_UTF8 + b'{"id": "j1", "text": "first"}\n{"id": "j2", "text": "second"}\n')
    assert [(ln.number, ln.data, ln.error) for ln in read_file(f)] == [
        (1, {"id": "j1", "text": "first"}, None),
        (2, {"id": "j2", "text": "second"}, None),
    ]


def test_an_over_long_jsonl_line_is_rejected_by_number_and_never_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, each line was read whole before any check: one 100 MB line peaked at 660 MB."""
    monkeypatch.setattr(sources, "MAX_LINE_BYTES", 1_000)
    at_cap = '{"text": "' + "a" * 988 + '"}'  # 1,000 bytes
    f = tmp_path / "long.jsonl"
    huge = '{"text": "' + "x" * 20_000_000 + '"}'
    f.write_text(f'{{"text": "before"}}\n{huge}\n{at_cap}\n{{"text": "after"}}\n' + "y" * 1_001)
    tracemalloc.start()
    try:
        lines = [(ln.number, ln.data, ln.error) for ln in read_file(f)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    too_long = "line longer than 1,000 bytes: no event that large is accepted"
    assert lines == [
        (1, {"text": "before"}, None),
        (2, None, too_long),
        (3, {"text": "a" * 988}, None),
        (4, {"text": "after"}, None),
        (5, None, too_long),  # the last line, without a line break
    ]
    assert peak < 1_000_000  # the 20 MB line was skipped in chunks


def test_the_line_cap_takes_every_event_ingest_accepts_and_refuses_past_it(tmp_path: Path) -> None:
    """At the real cap: a 1,200,001-byte event written \\u-escaped (3.6 MB) is still read,
    so ingest can say how large it is; a line one byte over the cap is refused unread."""
    escaped = json.dumps({"text": "é" * 600_000})
    f = tmp_path / "cap.jsonl"
    f.write_text(escaped + "\n" + "z" * (sources.MAX_LINE_BYTES + 1) + "\n")
    lines = list(read_file(f))
    assert lines[0].data == {"text": "é" * 600_000}
    with pytest.raises(InvalidEvent, match="1,200,1"):
        prepare(lines[0].data, "news")
    assert lines[1].number == 2 and (lines[1].error or "").startswith("line longer than 4,160,000 bytes")


async def _replayed_ids(path: Path, pacing: Pacing | None = None) -> list[str]:
    pulled = [0]
    producer = _Producer(pulled)
    await replay(producer, Topics(), read_file(path), "news", pacing or Pacing(), origin=path.name)  # type: ignore[arg-type]
    return [json.loads(v)["id"] for v in producer.values]


async def test_lines_without_ids_get_the_same_ids_in_every_run(tmp_path: Path) -> None:
    """Before, a line without an id got a random one: after a crash half-way, running the
    same file again sent the lines already sent under new ids, counted twice."""
    f = tmp_path / "news.jsonl"
    f.write_text('{"text": "Acme shares rise"}\n{"text": "Acme shares rise"}\n{"id": "given", "text": "BP falls"}\n')
    first = await _replayed_ids(f)
    assert await _replayed_ids(f) == first
    assert len(set(first)) == 3 and first[0].startswith("news.jsonl:1:") and first[2] == "given"
    f.write_text('{"text": "Acme shares rise"}\n{"text": "Acme shares fall"}\n{"id": "given", "text": "BP falls"}\n')
    changed = await _replayed_ids(f)
    assert changed[0] == first[0] and changed[1] != first[1]  # a changed line is a new event
    other = tmp_path / "other.jsonl"
    other.write_bytes(f.read_bytes())
    assert (await _replayed_ids(other))[0].startswith("other.jsonl:1:")
    rows = tmp_path / "news.csv"
    rows.write_text("text\nAcme shares rise\n")
    assert await _replayed_ids(rows) == await _replayed_ids(rows)
    # --speedup still stamps each run, on top of the derived ids
    stamped = await _replayed_ids(f, Pacing(speedup=1e9))
    assert {i.split("@")[0] for i in stamped} == set(changed) and all("@" in i for i in stamped)


def test_a_derived_id_stays_within_the_event_id_contract() -> None:
    name = "Börsen (copy) @ 2020 " * 10 + ".jsonl"
    ids = {line_id(name, 7, {"text": "x"}), line_id(name.replace("ö", "o"), 7, {"text": "x"})}
    assert len(ids) == 2  # names alike once made safe stay apart
    assert not any("@" in i for i in ids)  # the run stamp's separator stays unambiguous
    for i in ids | {run_id(i, 1_767_225_600_000) for i in ids}:
        assert len(i) <= 128
        RawNews(id=i, event_time=datetime(2026, 1, 1, tzinfo=UTC), text="x")
