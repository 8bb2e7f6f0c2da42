"""``tonewatch ingest demo --chat-rate 0`` (or nan): before, the chat pacing was built inside
the replay, after the news replay had started: a traceback and "coroutine never awaited".
It is now refused with the news pacing, one line, exit 2, before anything connects.

``tonewatch config check FILE`` / ``config docs --write FILE`` on a file without the
reference markers, or not UTF-8: before, a traceback; now ``error: FILE: ...``, exit 1
(README: 1 for a file to check or write), and the file is left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.cli import ingest as cli


@pytest.mark.parametrize("rate", ["0", "nan", "-1"])
def test_a_bad_chat_rate_is_one_line_exit_2_before_any_replay(rate: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_replay(*args: object, **kwargs: object) -> None:
        raise AssertionError("a refused option must not reach Kafka")

    monkeypatch.setattr(cli, "_replay", no_replay)
    result = CliRunner().invoke(cli.app, ["demo", "--chat-rate", rate, "--limit", "1"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: --") and "rate" in line


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"# notes\n\nno reference here\n", "the file has no configuration reference markers"),
        (b"\xff\xfe# not UTF-8\n", "not UTF-8 text (byte 0xff at offset 0)"),
    ],
)
@pytest.mark.parametrize("command", [["config", "check"], ["config", "docs", "--write"]])
def test_a_file_without_markers_or_not_utf8_is_one_line_exit_1(
    command: list[str], content: bytes, why: str, tmp_path: Path
) -> None:
    f = tmp_path / "notes.md"
    f.write_bytes(content)
    result = CliRunner().invoke(app, [*command, str(f)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: {f}: {why}")
    assert f.read_bytes() == content
