"""``tonewatch ingest file``: what it refuses before connecting (exit 2, one line), and the
run stamp of a ``--speedup`` replay, told at its start and end and reusable (``--run``)."""

from __future__ import annotations

import codecs
import gzip
import json
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import ingest as cli
from services.ingest.replay import Pacing, ReplayReport, run_stamp
from services.ingest.sources import Line

CARD = "4111 1111 1111 1111"


def _no_replay(*args: object, **kwargs: object) -> ReplayReport:
    raise AssertionError("a refused file or option must not reach Kafka")


def _refused(monkeypatch: pytest.MonkeyPatch, path: Path, *options: str) -> str:
    monkeypatch.setattr(cli, "_replay", _no_replay)
    result = CliRunner().invoke(cli.app, ["file", str(path), "--stream", "news", *options])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return " ".join(result.output.split())


def test_files_that_cannot_be_read_whole_are_refused_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, each of their lines was rejected alike (exit 1), the first row's personal data
    in every reason."""
    cases = {
        "nohdr.csv": (f"c1,card {CARD}\nc2,x\n".encode(), "no `text` column in the header: 'c1', 'card [CARD]'"),
        "dup.csv": (b"text,text\nfirst,second\n", "the header names column 'text' twice"),
        "u16.csv": (codecs.BOM_UTF16_LE + "text\nhi\n".encode("utf-16-le"), "the file is UTF-16"),
        "g.jsonl.gz": (
            gzip.compress(b'{"text": "a"}\n'),
            "gzip-compressed: decompress it first (gunzip -k g.jsonl.gz)",
        ),
    }
    for name, (content, says) in cases.items():
        f = tmp_path / name
        f.write_bytes(content)
        output = _refused(monkeypatch, f)
        assert output.startswith(f"error: {name}: ") and says in output and CARD not in output, output


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--speedup", "nan"], "--speedup must be a finite number"),
        (["--speedup", "1e-12"], "--speedup must be at least"),
        (["--speedup", "1", "--backfill", "1e12"], "--backfill must be at most"),
        (["--speedup", "1", "--backfill", "inf"], "--backfill must be a finite number"),
        (["--rate", "nan"], "--rate must be a finite number"),
        (["--run", "42"], "--run needs --speedup"),
    ],
)
def test_pacing_options_out_of_bounds_are_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: list[str], says: str
) -> None:
    """Before: tracebacks, or ``--rate nan`` sending unpaced."""
    f = tmp_path / "two.jsonl"
    f.write_text('{"text": "a"}\n')
    assert says in _refused(monkeypatch, f, *options)


def test_a_retimed_replay_tells_its_run_at_the_start_and_end_and_reuses_a_given_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the stamp (``id@<start ms>``) was never printed: a replay cut short could
    not be resumed without counting its events twice."""
    runs: list[int | None] = []

    async def fake_replay(
        lines: Iterable[Line], stream: str, pacing: Pacing, label: str, total: int | None = None, run: int | None = None
    ) -> ReplayReport:
        runs.append(run)
        return ReplayReport(produced=1, run=run)

    monkeypatch.setattr(cli, "_replay", fake_replay)
    f = tmp_path / "two.jsonl"
    f.write_text('{"id": "a", "text": "a", "event_time": "2020-01-01T00:00:00Z"}\n')
    cmd = ["file", str(f), "--stream", "news", "--speedup", "100"]
    first = CliRunner().invoke(cli.app, cmd)
    assert first.exit_code == 0, first.output
    stamp = runs[0]
    assert stamp is not None and f"to resume this replay if cut short: --run {stamp}" in first.stderr
    assert f"--run {stamp}" in first.stdout
    again = CliRunner().invoke(cli.app, [*cmd, "--run", str(stamp), "--json"])
    assert again.exit_code == 0 and runs[1] == stamp, again.output
    assert json.loads(again.stdout)["run"] == stamp
    plain = CliRunner().invoke(cli.app, ["file", str(f), "--stream", "news", "--json"])
    assert runs[2] is None and json.loads(plain.stdout)["run"] is None and "--run" not in plain.stderr


_UTF16_JSONL = '{"id": "n1", "text": "Acme shares rise"}\n{"id": "n2", "text": "Caf\u00e9 \u4e00 \U0001f642"}\n'
_UTF16_CSV = "id,text,source\r\nc1,Acme shares rise,wire\r\nc2,\u4e94\u4e94\u4e94,wire\r\n"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize(("name", "text"), [("u16.jsonl", _UTF16_JSONL), ("u16.csv", _UTF16_CSV)], ids=["jsonl", "csv"])
def test_the_cli_refuses_a_utf16_file_without_a_byte_order_mark_before_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str, name: str, text: str
) -> None:
    """Before: a JSONL file reached Kafka (every line rejected, exit 1); a CSV was refused
    for a header "without a text column"."""
    f = tmp_path / name
    f.write_bytes(text.encode(codec))
    output = _refused(monkeypatch, f)
    assert output.startswith(f"error: {name}: the file is UTF-16 ("), output


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param(lambda now: 0, id="0"),
        pytest.param(lambda now: -5, id="negative"),
        pytest.param(lambda now: now // 1000, id="seconds"),
        pytest.param(lambda now: 946_684_799_999, id="1999-12-31T23:59:59.999Z"),
        pytest.param(lambda now: now + 2 * 86_400_000, id="two-days-ahead"),
        pytest.param(lambda now: 10**15, id="year-33658"),  # the largest --run accepted before
    ],
)
def test_the_cli_refuses_a_run_no_replay_can_have_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stamp: Callable[[int], int]
) -> None:
    """Before, a stamp in seconds, or one thousands of years ahead, was taken: the resumed
    replay's ids matched no earlier run's (everything counted again); 0 and -5 were refused
    by the option's bounds, without a word of what a stamp is."""
    run = str(stamp(run_stamp(datetime.now(UTC))))
    f = tmp_path / "one.jsonl"
    f.write_text('{"text": "a"}\n')
    output = _refused(monkeypatch, f, "--speedup", "100", "--run", run)
    assert output.startswith(f"error: --run {run} is not a run stamp"), output
    assert "the start of a --speedup replay in Unix milliseconds" in output, output
    assert 'printed by that replay when it starts ("run STAMP: ids are stamped id@STAMP")' in output, output


def test_a_repeated_csv_header_is_told_as_skipped_and_the_run_still_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two CSV files joined with ``cat``: the second header is skipped, not sent. Before, the
    report's skipped lines were never printed: a header dropped without a word."""

    async def fake_replay(
        lines: Iterable[Line], stream: str, pacing: Pacing, label: str, total: int | None = None, run: int | None = None
    ) -> ReplayReport:
        report = ReplayReport(run=run)
        for line in lines:
            if line.skipped is not None:
                report.skip(line.number, line.skipped)
            else:
                report.produced += 1
        return report

    monkeypatch.setattr(cli, "_replay", fake_replay)
    f = tmp_path / "joined.csv"
    f.write_text("id,text\na,Acme up\nid,text\nb,Acme down\n")
    plain = CliRunner().invoke(cli.app, ["file", str(f), "--stream", "news"])
    assert plain.exit_code == 0, plain.output
    assert "produced 2 events" in plain.stdout
    assert "line 3: skipped: the header row again" in plain.stderr, plain.stderr
    as_json = CliRunner().invoke(cli.app, ["file", str(f), "--stream", "news", "--json"])
    out = json.loads(as_json.stdout)
    assert as_json.exit_code == 0 and out["produced"] == 2 and out["skipped_total"] == 1, as_json.output
    assert out["skipped"][0]["line"] == 3 and out["rejected"] == []


def test_format_csv_reads_a_pipe_without_a_csv_name_as_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ingest file <(cat f.csv)`` is ``/dev/fd/63``: without ``.csv`` it was read as JSONL,
    every row rejected. ``--format csv`` reads it as CSV; ``--format`` is checked first."""
    got: list[list[Line]] = []

    async def fake_replay(
        lines: Iterable[Line], stream: str, pacing: Pacing, label: str, total: int | None = None, run: int | None = None
    ) -> ReplayReport:
        got.append(list(lines))
        return ReplayReport(produced=len(got[-1]))

    monkeypatch.setattr(cli, "_replay", fake_replay)
    read_end, write_end = os.pipe()
    pipe = tmp_path / "63"
    pipe.symlink_to(f"/proc/self/fd/{read_end}")
    with os.fdopen(write_end, "wb") as fh:  # small enough for the pipe's buffer
        fh.write(b"id,text\na,Tesco rises\n")
    result = CliRunner().invoke(cli.app, ["file", str(pipe), "--stream", "news", "--format", "csv"])
    os.close(read_end)
    assert result.exit_code == 0, result.output
    assert [(ln.number, ln.data) for ln in got[0]] == [(2, {"id": "a", "text": "Tesco rises"})]
    f = tmp_path / "two.jsonl"
    f.write_text('{"text": "a"}\n')
    assert "--format must be auto, jsonl, csv, not 'xml'" in _refused(monkeypatch, f, "--format", "xml")


def test_format_is_told_in_the_help() -> None:
    result = CliRunner().invoke(cli.app, ["file", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.replace("\u2502", " ").split())  # the help's box drawn around it
    assert "--format" in text and "read as JSONL unless --format csv" in text
