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
