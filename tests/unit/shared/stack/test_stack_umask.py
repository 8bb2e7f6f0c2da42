"""Directories the ``postgres`` OS user walks through are 0755 whatever the umask (as root)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from shared.stack import manager, postgres
from shared.stack.process import RunAs
from shared.stack.settings import StackSettings


@pytest.fixture
def strict_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("strict_umask")
def test_fallback_data_dir_is_traversable_by_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root, umask 077, state dir the postgres user cannot reach: /var/lib/tonewatch/... must not
    come out 0700 root-owned, or initdb fails with permission denied."""
    fallback_root = tmp_path / "var/lib/tonewatch"
    monkeypatch.setattr(postgres, "FALLBACK_ROOT", fallback_root)
    monkeypatch.setattr(postgres, "SOCKET_PATH_MAX", 4096)  # pytest's tmp paths are long
    monkeypatch.setattr(postgres, "server_user", lambda: (RunAs(uid=4242, gid=4242, groups=()), "postgres"))
    monkeypatch.setattr(postgres.Postgres, "_reachable", lambda self, run_as: False)
    monkeypatch.setattr(os, "chown", lambda path, uid, gid: None)
    commands: list[Sequence[str]] = []
    monkeypatch.setattr(postgres, "run_command", lambda cmd, **kw: commands.append(cmd))
    pg = postgres.Postgres(StackSettings(state_dir=tmp_path / "root/stack"))
    pg._bindir = Path("/usr/lib/postgresql/15/bin")

    pg.prepare(lambda line: None)

    assert pg.base.parent == fallback_root
    for path in (tmp_path / "var", tmp_path / "var/lib", fallback_root, pg.base, pg.socket_dir):
        assert _mode(path) == 0o755, path
    assert [Path(c[0]).name for c in commands] == ["initdb"]


@pytest.mark.usefixtures("strict_umask")
def test_state_dir_and_new_parents_are_0755_existing_ones_kept(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir(mode=0o700)
    settings = StackSettings(state_dir=tmp_path / "home/.cache/tonewatch/stack")
    with manager._state_lock(settings):
        pass
    assert _mode(tmp_path / "home") == 0o700
    for path in (tmp_path / "home/.cache", tmp_path / "home/.cache/tonewatch", settings.state_dir):
        assert _mode(path) == 0o755, path
