"""Background processes: detached start, pid files that survive pid reuse, stop, waits.

A pid file holds the pid and the process start time (``/proc/<pid>/stat`` field 22), so a
recycled pid is never mistaken for the process the stack started.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Runs in a short-lived child: starts the real command in a new session and prints its pid.
# The real process is then re-parented to init, so the caller never holds a zombie or a Popen.
_LAUNCHER = """
import json, subprocess, sys
spec = json.load(sys.stdin)
with open(spec["log"], "ab", buffering=0) as log:
    proc = subprocess.Popen(
        spec["cmd"], cwd=spec["cwd"], env=spec["env"], stdin=subprocess.DEVNULL,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
        user=spec["uid"], group=spec["gid"], extra_groups=spec["groups"], umask=spec["umask"],
    )
print(proc.pid, flush=True)
"""


class ProcessError(RuntimeError):
    """A stack process could not be started or stopped."""


@dataclass(frozen=True)
class RunAs:
    """OS identity a process runs under (``None`` fields: the current user)."""

    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] | None = None

    @classmethod
    def user(cls, name: str) -> RunAs:
        """The identity of OS user ``name`` with its own groups."""
        entry = pwd.getpwnam(name)
        return cls(entry.pw_uid, entry.pw_gid, tuple(os.getgrouplist(name, entry.pw_gid)))

    @property
    def is_current(self) -> bool:
        """True when nothing needs to change identity."""
        return self.uid is None or self.uid == os.geteuid()


CURRENT_USER = RunAs()


@dataclass(frozen=True)
class PidRecord:
    """What a pid file holds."""

    pid: int
    start_ticks: int
    name: str


def parse_stat_start_ticks(stat: str) -> int:
    """Field 22 (starttime) of a ``/proc/<pid>/stat`` line; the comm field may hold spaces and ')'."""
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def _stat(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None when it does not exist."""
    stat = _stat(pid)
    return None if stat is None else parse_stat_start_ticks(stat)


def _reap(pid: int) -> None:
    # Only matters when the process happens to be our own child.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(record: PidRecord) -> bool:
    """True when the recorded process still runs (same pid and start time, not a zombie)."""
    _reap(record.pid)
    stat = _stat(record.pid)
    if stat is None:
        return False
    state = stat[stat.rindex(")") + 2 :].split()[0]
    return state not in ("Z", "X") and parse_stat_start_ticks(stat) == record.start_ticks


def write_pid_file(path: Path, pid: int, name: str) -> PidRecord:
    """Record ``pid`` (with its start time) in ``path``, atomically."""
    ticks = start_ticks(pid)
    if ticks is None:
        raise ProcessError(f"{name}: process {pid} exited right after start")
    record = PidRecord(pid=pid, start_ticks=ticks, name=name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": pid, "start_ticks": ticks, "name": name}) + "\n")
    tmp.replace(path)
    return record


def read_pid_file(path: Path) -> PidRecord | None:
    """The record in ``path``, or None when missing or unreadable."""
    try:
        data = json.loads(path.read_text())
        return PidRecord(pid=int(data["pid"]), start_ticks=int(data["start_ticks"]), name=str(data["name"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def live_record(path: Path) -> PidRecord | None:
    """The record in ``path`` if its process is alive; a stale pid file is removed."""
    record = read_pid_file(path)
    if record is None:
        return None
    if is_alive(record):
        return record
    path.unlink(missing_ok=True)
    return None


def start_detached(
    cmd: Sequence[str],
    *,
    log_path: Path,
    cwd: Path,
    env: Mapping[str, str],
    run_as: RunAs = CURRENT_USER,
    umask: int = 0o022,
) -> int:
    """Start ``cmd`` in its own session, output appended to ``log_path``; return its pid.

    The process survives the caller's exit and is not the caller's child.
    """
    spec = {
        "cmd": list(cmd),
        "cwd": str(cwd),
        "env": dict(env),
        "log": str(log_path),
        "uid": None if run_as.is_current else run_as.uid,
        "gid": None if run_as.is_current else run_as.gid,
        "groups": None if run_as.is_current or run_as.groups is None else list(run_as.groups),
        "umask": umask,
    }
    done = subprocess.run(  # noqa: S603 - fixed interpreter and code; the command is ours
        [sys.executable, "-I", "-W", "ignore", "-c", _LAUNCHER],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise ProcessError(f"could not start {cmd[0]}: {done.stderr.strip()[-2000:]}")
    return int(done.stdout.strip())


def run_command(
    cmd: Sequence[str],
    *,
    timeout_s: float,
    run_as: RunAs = CURRENT_USER,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` to completion (output captured); raise :class:`ProcessError` when it fails."""
    switch = not run_as.is_current
    try:
        done = subprocess.run(  # noqa: S603 - commands are built from resolved binaries, never a shell
            list(cmd),
            cwd=cwd,
            env=None if env is None else dict(env),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            user=run_as.uid if switch else None,
            group=run_as.gid if switch else None,
            extra_groups=list(run_as.groups or ()) if switch else None,
        )
    except subprocess.TimeoutExpired as exc:
        raise ProcessError(f"{Path(cmd[0]).name} timed out after {timeout_s:.0f}s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-3000:]
        raise ProcessError(f"{Path(cmd[0]).name} failed (exit {done.returncode}): {output}")
    return done


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout_s: float,
    interval_s: float = 0.25,
    abort: Callable[[], str | None] | None = None,
) -> bool:
    """Poll ``condition`` until true or the deadline; ``abort`` returning a reason raises ProcessError."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if abort is not None and (reason := abort()) is not None:
            raise ProcessError(reason)
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))


def stop_process(record: PidRecord, *, sig: signal.Signals, timeout_s: float) -> bool:
    """Send ``sig``, wait up to ``timeout_s`` for exit, then SIGKILL. True when it had to be killed."""
    if not is_alive(record):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, sig)
    if wait_until(lambda: not is_alive(record), timeout_s=timeout_s, interval_s=0.1):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, signal.SIGKILL)
    if not wait_until(lambda: not is_alive(record), timeout_s=10, interval_s=0.1):
        raise ProcessError(f"{record.name} (pid {record.pid}) did not exit after SIGKILL")
    return True


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a text file ('' when missing)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
