"""``reset`` and the state lock (processes and the postgres OS user faked, paths in tmp)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from shared.stack import manager, postgres
from shared.stack.component import Log
from shared.stack.settings import StackSettings


def _lock_held(lock: Path) -> bool:
    """True when another open file description holds ``lock`` (flock is per description)."""
    with lock.open("a") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(other, fcntl.LOCK_UN)
        return False


def _stack_files(state: Path) -> None:
    for sub in ("kafka/data", "postgres/data", "redis", "logs", "run"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "postgres/data/PG_VERSION").write_text("15\n")
    (state / "run/kafka.pid").write_text("not a live record")
    (state / "notes.txt").write_text("not the stack's")


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackSettings:
    monkeypatch.setattr(postgres, "FALLBACK_ROOT", tmp_path / "var/lib/tonewatch")
    return StackSettings(state_dir=tmp_path / "stack")


def test_reset_deletes_under_the_lock_and_keeps_the_lock_file(
    settings: StackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent `up` must not slip in between `down` and the deletions, nor find a new
    stack.lock that a second `up` could also take."""
    state = settings.state_dir
    _stack_files(state)
    (state / "stack.lock").touch()
    held: list[bool] = []
    original = manager._remove_created

    def spy(folder: Path, entries: re.Pattern[str], log: Log) -> None:
        held.append(_lock_held(state / "stack.lock"))
        original(folder, entries, log)

    monkeypatch.setattr(manager, "_remove_created", spy)
    report = manager.reset(settings)
    assert report.ok and report.action == "reset"
    assert held and all(held), held
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt", "stack.lock"]
    assert not _lock_held(state / "stack.lock")


def test_run_and_logs_exist_once_the_lock_is_held(settings: StackSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    """An `up` that waited for a reset's lock finds run/ and logs/ again (the reset removed them
    while `up` was waiting), so its pid files can be written."""
    real_flock = fcntl.flock
    state = settings.state_dir

    def flock_while_a_reset_runs(fd: Any, operation: int) -> None:
        if operation == fcntl.LOCK_EX:
            for sub in ("run", "logs"):
                shutil.rmtree(state / sub, ignore_errors=True)
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_while_a_reset_runs)
    with manager._state_lock(settings):
        assert (state / "run").is_dir() and (state / "logs").is_dir()


def test_reset_as_root_without_a_postgres_user(settings: StackSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh machine before --install-prereqs: no `postgres` OS user yet."""

    def no_user(name: str) -> pwd.struct_passwd:
        raise KeyError(f"getpwnam(): name not found: {name!r}")

    monkeypatch.setattr(pwd, "getpwnam", no_user)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    _stack_files(settings.state_dir)
    digest = hashlib.sha256(str(settings.state_dir).encode()).hexdigest()[:12]
    fallback = postgres.FALLBACK_ROOT / f"stack-{digest}"
    (fallback / "data").mkdir(parents=True)
    (fallback / "token").write_text("t\n")

    report = manager.reset(settings)
    assert report.ok
    assert not fallback.exists()
    assert sorted(p.name for p in settings.state_dir.iterdir()) == ["notes.txt", "stack.lock"]
