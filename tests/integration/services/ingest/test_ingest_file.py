"""`tonewatch ingest file` against the real broker: valid lines produced (ids
assigned), invalid lines (an event too large for a Kafka message among them) reported
with their line numbers, exit code 1."""

from __future__ import annotations

import codecs
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from tw_testing import scored_news

from services.aggregator.persist import store_batch
from shared.events import RawNews

pytestmark = pytest.mark.integration


async def test_ingest_file(ingest: Any, consumed: Any, tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"text": "Tesco shares rise", "event_time": "2026-01-01T10:00:00Z"}),
                json.dumps({"id": "keep-me", "text": "BP profit falls"}),
                "{broken",
                json.dumps({"text": ""}),
                json.dumps({"id": "too-big", "text": "é" * 600_000}),  # 1.2 MB: more than a Kafka message holds
            ]
        )
        + "\n"
    )
    proc = await ingest(path, "--rate", "50")
    assert proc.returncode == 1, proc.stderr
    assert "produced 2 events" in proc.stdout
    assert "line 3: rejected: malformed JSON" in proc.stderr and "line 4: rejected: text" in proc.stderr
    assert "line 5: rejected: text: the event is 1,200,1" in proc.stderr and "Traceback" not in proc.stderr
    got = await consumed(2)
    assert {e.text for e in got} == {"Tesco shares rise", "BP profit falls"}
    assert "keep-me" in {e.id for e in got} and all(e.id for e in got)


async def test_ingest_file_backfill_sends_the_past_at_once(ingest: Any, consumed_records: Any, tmp_path: Path) -> None:
    """``--speedup 3600 --backfill 1.5``: four events an hour apart land 1 s apart, the first
    two already in the past when they are sent, the last two sent when their time comes."""
    path = tmp_path / "news.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"b{h}", "text": f"headline {h}", "event_time": f"2020-01-01T0{h}:00:00Z"}) + "\n"
            for h in range(4)
        )
    )
    proc = await ingest(path, "--speedup", "3600", "--backfill", "1.5")
    assert proc.returncode == 0, proc.stderr
    refused = await ingest(path, "--rate", "5", "--backfill", "60")
    assert refused.returncode == 2 and "--backfill needs --speedup" in refused.stderr
    got: dict[str, tuple[float, float]] = {}  # id -> (event time, time the producer sent it)
    for r in await consumed_records(4):
        e = RawNews.model_validate_json(r.value or b"")
        got[e.id] = (e.event_time.timestamp(), r.timestamp / 1000)
    assert {k.split("@")[0] for k in got} == {f"b{h}" for h in range(4)}  # a retimed replay stamps its run
    got = {k.split("@")[0]: v for k, v in got.items()}
    times = [got[f"b{h}"][0] for h in range(4)]
    assert [round(b - a, 3) for a, b in itertools.pairwise(times)] == [1.0, 1.0, 1.0]
    lag = {k: sent - t for k, (t, sent) in got.items()}
    assert lag["b0"] > 1.0 and lag["b1"] > 0.0  # sent at once, with event times in the past
    assert -0.2 < lag["b2"] < 1.0 and -0.2 < lag["b3"] < 1.0  # sent when their time came


async def test_a_retimed_replay_of_the_same_file_is_counted_again(
    ingest: Any, consumed: Any, tmp_path: Path, sessions: Any
) -> None:
    """``--speedup`` moves event times to now; before, it kept the ids, so a second replay of
    the same file (or a second ``scripts/demo``) was dropped by the aggregator's ledger while
    ingest said "produced N". Each run's events now carry the run in their id: a new run
    counts again, a retry within a run still once."""
    path = tmp_path / "news.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"r{i}", "text": f"headline {i}", "event_time": f"2020-01-01T00:00:0{i}Z"}) + "\n"
            for i in range(3)
        )
    )
    for _ in range(2):
        proc = await ingest(path, "--speedup", "100")
        assert proc.returncode == 0 and "produced 3 events" in proc.stdout, proc.stderr
    got = await consumed(6)
    runs: dict[str, list[RawNews]] = {}
    for e in got:
        original, _, run = e.id.partition("@")
        assert original in {"r0", "r1", "r2"} and run.isdigit(), e.id
        runs.setdefault(run, []).append(e)
    assert len(runs) == 2 and all(len(events) == 3 for events in runs.values())

    first, second = ([scored_news(e) for e in events] for events in runs.values())
    assert await store_batch(sessions, first) == 3
    assert await store_batch(sessions, second) == 3  # the second run is counted too
    assert await store_batch(sessions, first) == 0  # a retry within a run is not


async def test_ingest_file_rejects_deep_json_and_long_csv_rows_by_physical_line_and_goes_on(
    ingest: Any, consumed: Any, tmp_path: Path
) -> None:
    """A JSONL line nested 200,000 deep used to abort the ingest (RecursionError: later
    lines never sent, no report); a CSV row with an unquoted comma was sent cut short,
    and rows after blank lines were reported under the wrong line number."""
    deep = tmp_path / "deep.jsonl"
    deep.write_text(
        json.dumps({"id": "j1", "text": "before"}) + "\n" + "[" * 200_000 + "]" * 200_000 + "\n"
        + json.dumps({"id": "j3", "text": "after"}) + "\n"
    )  # fmt: skip
    rows = tmp_path / "rows.csv"
    rows.write_text("id,text,source\nc1,Shares flat,x\n\n\nc2,Profits up, shares down,reuters\nc3,ok,y\n")
    expected = {deep: "line 2: rejected: malformed JSON: nested too deeply", rows: "line 5: rejected: malformed CSV"}
    for path, rejection in expected.items():
        proc = await ingest(path)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "produced 2 events" in proc.stdout and rejection in proc.stderr, proc.stderr
    got = {e.id: e for e in await consumed(4)}
    assert sorted(got) == ["c1", "c3", "j1", "j3"]  # the bad lines alone are left out


async def test_a_rerun_of_a_file_without_ids_sends_the_same_ids_and_is_counted_once(
    ingest: Any, consumed: Any, tmp_path: Path, sessions: Any
) -> None:
    """Before, a line without an id got a random one: after an ingest crashed half-way
    (exit 3, no count of what was sent), running the same file again sent the lines
    already sent under new ids, and the ledger counted them twice."""
    path = tmp_path / "no-ids.jsonl"
    path.write_text(
        "".join(json.dumps({"text": f"headline {i}", "event_time": f"2020-01-01T00:00:0{i}Z"}) + "\n" for i in range(3))
    )
    for _ in range(2):
        proc = await ingest(path)
        assert proc.returncode == 0 and "produced 3 events" in proc.stdout, proc.stderr
    got = await consumed(6)
    by_id: dict[str, list[RawNews]] = {}
    for e in got:
        by_id.setdefault(e.id, []).append(e)
    assert len(by_id) == 3 and all(len(sent) == 2 for sent in by_id.values())  # each line twice, one id
    assert all(i.startswith("no-ids.jsonl:") for i in by_id)
    assert await store_batch(sessions, [scored_news(sent[0]) for sent in by_id.values()]) == 3
    assert await store_batch(sessions, [scored_news(sent[1]) for sent in by_id.values()]) == 0  # the rerun


async def test_ingest_file_reports_quote_errors_a_bom_and_an_over_long_line_by_line(
    ingest: Any, consumed: Any, tmp_path: Path
) -> None:
    """Before, an unclosed CSV quote joined the rows after it to its field (exit 0, nothing
    rejected) and a stray quote was sent as text; a JSONL file's byte-order mark lost
    line 1; a 5 MB line was read whole before being refused."""
    quotes = tmp_path / "quotes.csv"
    quotes.write_text('id,text\nq1,"Acme says "no" to offer"\nq2,Acme shares rise\nq3,"Acme 12\'\' pizza\nq4,lost\n')
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(
        codecs.BOM_UTF8
        + json.dumps({"id": "l1", "text": "first"}).encode()
        + b'\n{"text": "'
        + b"x" * 5_000_000
        + b'"}\n'
        + json.dumps({"id": "l3", "text": "after"}).encode()
        + b"\n"
    )
    expected = {
        quotes: (
            "produced 1 events",
            [
                "line 2: rejected: malformed CSV: ',' expected after '\"'",
                "line 4: rejected: malformed CSV: a quote opened in this row is never closed: lines 4-5",
            ],
        ),
        lines: ("produced 2 events", ["line 2: rejected: line longer than 4,160,000 bytes"]),
    }
    for path, (produced, rejections) in expected.items():
        proc = await ingest(path)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert produced in proc.stdout and all(r in proc.stderr for r in rejections), proc.stderr
    got = {e.id: e for e in await consumed(3)}
    assert {i: e.text for i, e in got.items()} == {"q2": "Acme shares rise", "l1": "first", "l3": "after"}


async def test_a_paced_line_without_a_time_is_stamped_when_it_is_sent(
    ingest: Any, consumed_records: Any, tmp_path: Path
) -> None:
    """``--rate 2`` on lines without ``event_time``: each event's time is when the producer sent
    it (the record's Kafka timestamp), not half a second before, when the line before it went."""
    path = tmp_path / "paced.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "text": f"headline {i}"}) + "\n" for i in range(4)))
    proc = await ingest(path, "--rate", "2")
    assert proc.returncode == 0, proc.stderr
    lag = {}
    for r in await consumed_records(4):
        e = RawNews.model_validate_json(r.value or b"")
        lag[e.id] = r.timestamp / 1000 - e.event_time.timestamp()
    assert sorted(lag) == ["p0", "p1", "p2", "p3"]
    assert all(abs(x) < 0.25 for x in lag.values()), lag  # an interval early before: 0.5 s
