"""Bad connection settings: before, ``migrate``, ``entities list``, ``alerts rules list``,
``keys list`` and ``ingest file`` ended in a 69-220-line traceback (exit 1). A setting the
clients cannot use is now refused by the settings (exit 2, one line naming the field, not
its value), and a login or database PostgreSQL refuses is one scrubbed line, exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

import services.cli as cli

SECRET = "Sup3rS3cretPw"


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("command", "env", "field"),
    [
        (["entities", "list"], {"TW_POSTGRES__URL": f"postgresql+psycopg2://tw:{SECRET}@h/tw"}, "TW_POSTGRES__URL"),
        (["keys", "list"], {"TW_POSTGRES__URL": f"postgresql+asyncpg://tw:{SECRET}@h:notaport/tw"}, "TW_POSTGRES__URL"),
        (["migrate"], {"TW_POSTGRES__URL": f"postgresql://tw:{SECRET}@h:99999/tw"}, "TW_POSTGRES__URL"),
        (
            ["ingest", "file", "{file}", "--stream", "news"],
            {"TW_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:abc"},
            "kafka.bootstrap_servers",
        ),
    ],
)
def test_a_connection_setting_the_clients_cannot_use_is_one_line_exit_2(
    command: list[str], env: dict[str, str], field: str, tmp_path: Path
) -> None:
    f = tmp_path / "news.jsonl"
    f.write_text('{"text": "x"}\n')
    done = _run(*[str(f) if a == "{file}" else a for a in command], **env)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and SECRET not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: invalid configuration") and field in line


def _refused(sqlstate_error: Exception) -> DBAPIError:
    """A refusal as SQLAlchemy raises it from asyncpg: the driver's error wrapped twice."""
    adapted = Exception(str(sqlstate_error))
    adapted.sqlstate = sqlstate_error.sqlstate  # type: ignore[attr-defined]  # as SQLAlchemy's adapter copies it
    adapted.__cause__ = sqlstate_error
    return DBAPIError("select 1", None, adapted)


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (asyncpg.InvalidPasswordError('password authentication failed for user "tw"'), "refused the login"),
        (asyncpg.InvalidCatalogNameError('database "nosuch" does not exist'), "has no such database"),
        (asyncpg.InsufficientPrivilegeError('permission denied for database "tw"'), "refused access"),
    ],
)
def test_a_refused_connection_is_one_line_exit_1(
    error: Exception, said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def app() -> None:
        raise _refused(error) from None

    monkeypatch.setattr(cli, "app", app)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: PostgreSQL {said}: ") and str(error) in line and "TW_POSTGRES__URL" in line


def test_another_database_error_is_not_taken_for_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    def app() -> None:
        raise _refused(asyncpg.UndefinedColumnError("column x does not exist"))

    monkeypatch.setattr(cli, "app", app)
    with pytest.raises(DBAPIError):
        cli.main()


def test_another_access_rule_error_of_class_42_is_not_taken_for_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only 42501 (insufficient privilege) of class 42 is a refusal: 42P01 is the code's own error."""

    def app() -> None:
        raise _refused(asyncpg.UndefinedTableError('relation "x" does not exist'))

    monkeypatch.setattr(cli, "app", app)
    with pytest.raises(DBAPIError):
        cli.main()
