"""Pid files, /proc parsing, detached start and stop (with a harmless `sleep`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from shared.stack.process import (
    PidRecord,
    is_alive,
    live_record,
    parse_stat_start_ticks,
    port_open,
    read_pid_file,
    start_detached,
    stop_process,
    tail,
    wait_until,
    write_pid_file,
)


def test_parse_stat_with_spaces_and_parens_in_comm() -> None:
    fields = ["S", *[str(n) for n in range(4, 22)], "987654", "0"]
    stat = "4242 (we) ird (name) " + " ".join(fields)
    assert parse_stat_start_ticks(stat) == 987654


def test_pid_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "self.pid"
    record = write_pid_file(path, os.getpid(), "self")
    assert read_pid_file(path) == record
    assert is_alive(record)
    assert live_record(path) == record


def test_recycled_pid_is_not_alive(tmp_path: Path) -> None:
    path = tmp_path / "x.pid"
    record = write_pid_file(path, os.getpid(), "self")
    recycled = PidRecord(pid=record.pid, start_ticks=record.start_ticks + 1, name="self")
    assert not is_alive(recycled)
    path.write_text(json.dumps({"pid": recycled.pid, "start_ticks": recycled.start_ticks, "name": "self"}))
    assert live_record(path) is None
    assert not path.exists()


def test_garbage_pid_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.pid"
    path.write_text("not json")
    assert read_pid_file(path) is None
    assert read_pid_file(tmp_path / "missing.pid") is None


def test_detached_process_start_and_stop(tmp_path: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep is not None
    log = tmp_path / "sleep.log"
    pid = start_detached([sleep, "300"], log_path=log, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    record = write_pid_file(tmp_path / "sleep.pid", pid, "sleep")
    try:
        assert is_alive(record)
        assert os.getsid(pid) == pid  # its own session: survives the caller
        assert not stop_process(record, sig=signal.SIGTERM, timeout_s=10)
        assert not is_alive(record)
    finally:
        if is_alive(record):
            os.kill(pid, signal.SIGKILL)


def test_wait_until_deadline_and_abort() -> None:
    assert wait_until(lambda: True, timeout_s=0.1)
    assert not wait_until(lambda: False, timeout_s=0.2, interval_s=0.05)
    with pytest.raises(RuntimeError, match="gone"):
        wait_until(lambda: False, timeout_s=5, abort=lambda: "gone")


def test_port_open_on_closed_port() -> None:
    assert not port_open("127.0.0.1", 1)


def test_tail(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_text("".join(f"line {n}\n" for n in range(100)))
    assert tail(path, 2) == "line 98\nline 99"
    assert tail(tmp_path / "missing") == ""
