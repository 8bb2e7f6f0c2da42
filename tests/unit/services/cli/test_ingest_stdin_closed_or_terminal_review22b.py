"""``tonewatch ingest file -`` with standard input closed (``<&-``) ended in a traceback
(FileNotFoundError: '/dev/stdin', exit 1): it is now refused in one line (exit 2). With
standard input a terminal it waited without a word: a hint on stderr now says how to end it."""

from __future__ import annotations

import os
import pty
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pytest
from typer.testing import CliRunner, Result

from services.cli import ingest as cli
from services.ingest.replay import Pacing, ReplayReport
from services.ingest.sources import Line

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
    """A stand-in for ``_replay`` that reads every line and sends nothing."""

    def __init__(self) -> None:
        self.lines: list[Line] | None = None

    async def __call__(
        self,
        lines: Iterable[Line],
        stream: str,
        pacing: Pacing,
        label: str,
        total: int | None = None,
        run: int | None = None,
    ) -> ReplayReport:
        self.lines = list(lines)
        return ReplayReport(produced=len(self.lines))


def _ingest(monkeypatch: pytest.MonkeyPatch, path: str = "-") -> tuple[Result, _Replays]:
    replays = _Replays()
    monkeypatch.setattr(cli, "_replay", replays)
    return CliRunner().invoke(cli.app, ["file", path, "--stream", "news"]), replays


def test_closed_standard_input_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with _fd0(None):
        result, replays = _ingest(monkeypatch)
    assert result.exit_code == 2, result.output
    assert result.output == "error: stdin: cannot read standard input (closed)\n"
    assert replays.lines is None


def test_a_terminal_on_standard_input_gets_a_hint_then_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    leader, follower = pty.openpty()
    # the terminal's line, then Ctrl-D (end of input) at the start of the next one
    typist = threading.Thread(target=os.write, args=(leader, b'{"id": "t", "text": "typed"}\n\x04'), daemon=True)
    try:
        with _fd0(follower):
            typist.start()
            result, replays = _ingest(monkeypatch)
    finally:
        typist.join(timeout=10)
        os.close(follower)
        os.close(leader)
    assert result.exit_code == 0, result.output
    assert result.stderr == HINT + "\n"
    assert replays.lines is not None and [ln.data for ln in replays.lines] == [{"id": "t", "text": "typed"}]


def test_a_pipe_gets_no_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"id": "p", "text": "piped"}\n')
    os.close(write_end)
    try:
        with _fd0(read_end):
            result, replays = _ingest(monkeypatch)
    finally:
        os.close(read_end)
    assert result.exit_code == 0, result.output
    assert HINT not in result.output
    assert replays.lines is not None and len(replays.lines) == 1
