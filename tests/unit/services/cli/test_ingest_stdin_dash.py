"""``tonewatch ingest file -`` reads standard input, as ``/dev/stdin`` does.

Before: ``-`` was refused as a missing file (exit 2, "file '-' does not exist."); a pipe
had to be given as ``/dev/stdin``. ``-`` is now read the way ``/dev/stdin`` is (a pipe as it
arrives, JSONL unless ``--format csv``), and the ids of its lines without one derive from
the same name, ``stdin``; a file named ``-`` is still ``./-``. With standard input closed
(``<&-``) it ended in a traceback (FileNotFoundError: '/dev/stdin', exit 1): it is now refused
in one line (exit 2). With standard input a terminal it waited without a word: a hint on
stderr now says how to end it."""

from __future__ import annotations

import contextlib
import os
import pty
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from services.cli import ingest as cli
from services.ingest.replay import Pacing, ReplayReport
from services.ingest.sources import Line, PipeLines


@contextmanager
def _stdin_pipe(data: bytes) -> Iterator[None]:
    """File descriptor 0 (what ``/dev/stdin`` opens) the read end of a pipe that a thread
    fills with ``data`` and closes; the real one restored after."""
    read_end, write_end = os.pipe()
    saved = os.dup(0)

    def write() -> None:
        # a test whose command reads a file, not standard input, leaves the pipe unread
        with contextlib.suppress(BrokenPipeError), os.fdopen(write_end, "wb") as fh:
            fh.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    os.dup2(read_end, 0)
    os.close(read_end)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        writer.join(timeout=10)


HINT = "reading events from standard input (a terminal): end with Ctrl-D"


@contextmanager
def _fd0(fd: int | None) -> Iterator[None]:
    """File descriptor 0 a copy of ``fd``, or closed for ``None``; the real one restored after."""
    saved = os.dup(0)
    if fd is None:
        os.close(0)
    else:
        os.dup2(fd, 0)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)


class _Replays:
    """A stand-in for ``_replay`` that keeps what each call got, and sends nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Line], bool]] = []

    async def __call__(
        self,
        lines: Iterable[Line],
        stream: str,
        pacing: Pacing,
        label: str,
        total: int | None = None,
        run: int | None = None,
    ) -> ReplayReport:
        live = isinstance(lines, PipeLines)
        self.calls.append((label, list(lines), live))
        return ReplayReport(produced=len(self.calls[-1][1]))


def _ingest(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[Result, _Replays]:
    replays = _Replays()
    monkeypatch.setattr(cli, "_replay", replays)
    return CliRunner().invoke(cli.app, ["file", *args, "--stream", "news"]), replays


def test_dash_reads_a_pipe_on_standard_input_as_dev_stdin_does(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b'{"id": "a", "text": "Tesco rises"}\n{"text": "no id"}\n'
    with _stdin_pipe(data):
        dash, by_dash = _ingest(monkeypatch, "-")
    assert dash.exit_code == 0, dash.output
    with _stdin_pipe(data):
        named, by_name = _ingest(monkeypatch, "/dev/stdin")
    assert named.exit_code == 0, named.output
    ((label, lines, live),) = by_dash.calls
    assert [(ln.number, ln.data) for ln in lines] == [(1, {"id": "a", "text": "Tesco rises"}), (2, {"text": "no id"})]
    assert live  # read in a thread as it arrives, as a pipe is
    # the ids of id-less lines derive from the label: the same as for /dev/stdin
    assert label == "stdin" and by_name.calls[0][0] == label
    assert "produced 2 events" in dash.stdout


def test_dash_with_format_csv_reads_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    with _stdin_pipe(b"id,text\na,Tesco rises\n"):
        result, replays = _ingest(monkeypatch, "-", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert [(ln.number, ln.data) for ln in replays.calls[0][1]] == [(2, {"id": "a", "text": "Tesco rises"})]


def test_an_unreadable_standard_input_is_refused_by_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    with _stdin_pipe(b"\xff\xfe" + "text\n".encode("utf-16-le")):
        result, replays = _ingest(monkeypatch, "-")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: stdin: the file is UTF-16"), result.output
    assert replays.calls == []


def test_a_file_named_dash_is_dot_slash_dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    missing, _ = _ingest(monkeypatch, "./-")
    assert missing.exit_code == 2 and "file './-' does not exist." in missing.output, missing.output
    Path("-").write_text('{"id": "f", "text": "from the file"}\n', encoding="utf-8")
    with _stdin_pipe(b'{"id": "s", "text": "from standard input"}\n'):
        result, replays = _ingest(monkeypatch, "./-")
    assert result.exit_code == 0, result.output
    ((label, lines, live),) = replays.calls
    assert label == "-" and not live and [ln.data["id"] for ln in lines if ln.data] == ["f"]


@pytest.mark.parametrize(("make", "says"), [("missing", "does not exist."), ("folder", "is a directory.")])
def test_a_missing_file_or_a_folder_is_still_refused_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: str, says: str
) -> None:
    path = tmp_path / make
    if make == "folder":
        path.mkdir()
    result, replays = _ingest(monkeypatch, str(path))
    text = "".join(result.output.replace("\u2502", " ").split())  # the box wraps a long path anywhere
    assert result.exit_code == 2 and f"Invalidvaluefor'path':file'{path}'{says}".replace(" ", "") in text, text
    assert replays.calls == []


def test_dash_is_told_in_the_help() -> None:
    result = CliRunner().invoke(cli.app, ["file", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.replace("\u2502", " ").split())
    assert "'-': standard input" in text and "- or /dev/stdin" in text, text


def test_closed_standard_input_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with _fd0(None):
        result, replays = _ingest(monkeypatch, "-")
    assert result.exit_code == 2, result.output
    assert result.output == "error: stdin: cannot read standard input (closed)\n"
    assert replays.calls == []


def test_a_terminal_on_standard_input_gets_a_hint_then_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    leader, follower = pty.openpty()
    # the terminal's line, then Ctrl-D (end of input) at the start of the next one
    typist = threading.Thread(target=os.write, args=(leader, b'{"id": "t", "text": "typed"}\n\x04'), daemon=True)
    try:
        with _fd0(follower):
            typist.start()
            result, replays = _ingest(monkeypatch, "-")
    finally:
        typist.join(timeout=10)
        os.close(follower)
        os.close(leader)
    assert result.exit_code == 0, result.output
    assert result.stderr == HINT + "\n"
    assert [ln.data for ln in replays.calls[-1][1]] == [{"id": "t", "text": "typed"}]


def test_a_pipe_gets_no_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"id": "p", "text": "piped"}\n')
    os.close(write_end)
    try:
        with _fd0(read_end):
            result, replays = _ingest(monkeypatch, "-")
    finally:
        os.close(read_end)
    assert result.exit_code == 0, result.output
    assert HINT not in result.output
    assert len(replays.calls[-1][1]) == 1
