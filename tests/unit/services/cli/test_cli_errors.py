"""Errors the command line reports in one line, with the documented exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bad_setting_is_one_line_exit_2_without_the_values() -> None:
    done = _run(
        "dlq",
        "list",
        "news.raw",
        TW_KAFKA__REQUEST_TIMEOUT_MS="abc",
        TW_REDIS__URL="redis://:S3cretRedisPw@r:6379/0",
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "S3cretRedisPw" not in done.stderr
    assert "invalid configuration" in done.stderr and "kafka.request_timeout_ms" in done.stderr


def test_a_missing_local_file_is_not_an_unreachable_service(tmp_path: Path) -> None:
    done = _run("config", "check", str(tmp_path / "missing.md"))
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "cannot reach a service" not in done.stderr
    assert "missing.md" in done.stderr


def test_a_backtest_with_a_date_that_is_not_one_is_a_usage_error() -> None:
    done = _run("alerts", "backtest", "--rule", "any", "--from", "notadate", "--to", "2020-04-01")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "notadate" in done.stderr


def _flat(text: str) -> str:
    """The text without the line breaks and frame of a usage error's panel."""
    return " ".join(text.replace("│", " ").split())


# Nothing listens here: a command that got past its usage checks would fail to connect.
NO_DATABASE = "postgresql+asyncpg://tonewatch:tonewatch@127.0.0.1:9/none"


def test_a_backtest_out_of_range_is_a_usage_error_before_any_connection() -> None:
    """``--to 9999-12-31T23:59`` ran for ever, ``--from 0001-01-01`` ended on a raw
    OverflowError (exit 1); a reversed range is refused too."""
    for span, says in (
        (("2026-03-02", "9999-12-31T23:59"), "longer than a backtest may cover (92 days)"),
        (("0001-01-01", "2026-03-02T09:00"), "92 days"),
        (("2026-03-02T09:00", "2026-03-02T08:00"), "is before the start"),
    ):
        done = _run(
            "alerts", "backtest", "--rule", "any", "--from", span[0], "--to", span[1], TW_POSTGRES__URL=NO_DATABASE
        )
        assert done.returncode == 2, done.stderr[-2000:]
        assert "Traceback" not in done.stderr and says in _flat(done.stderr), done.stderr


def test_an_all_digit_rule_name_is_a_usage_error() -> None:
    """``rules add 1`` was accepted, and ``rules delete 1`` then deleted rule id 1."""
    done = _run("alerts", "rules", "add", "1", "--entity", "ACME", TW_POSTGRES__URL=NO_DATABASE)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "cannot be all digits" in done.stderr


def test_a_chat_rule_over_entities_is_a_usage_error() -> None:
    done = _run("alerts", "rules", "add", "chatty", "--stream", "chat", "--all-entities", TW_POSTGRES__URL=NO_DATABASE)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "chats are not tagged with entities" in done.stderr
