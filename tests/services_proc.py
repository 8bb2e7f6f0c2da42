"""Run tonewatch services as real child processes in tests."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tw_testing import env_for

from shared.config import ServiceSettings


def start_service(
    name: str, settings: ServiceSettings, log_dir: Path, tag: str = "", **env: str
) -> subprocess.Popen[bytes]:
    """``python -m services run NAME`` as a child process logging to ``log_dir/NAME{tag}.log``.

    Its temporary files go to ``log_dir/tmp`` (``TMPDIR``), inside the test's ``tmp_path``,
    which pytest clears (it keeps the last three runs'): the classifier keeps faust's data
    dir in the temp dir, named after its consumer group, and each test's unique group left
    a ``/tmp/tonewatch-faust-cls-<unique>`` behind for good, however the process ended."""
    log = (log_dir / f"{name}{tag}.log").open("ab")
    tmp = log_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services", "run", name],
        env=env_for(settings, **{"TMPDIR": str(tmp), **env}),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode


@contextmanager
def running(name: str, settings: ServiceSettings, log_dir: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_service(name, settings, log_dir, **env)
    try:
        yield proc
    finally:
        stop(proc)


def log_tail(log_dir: Path, name: str, n: int = 3000) -> str:
    path = log_dir / f"{name}.log"
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"
