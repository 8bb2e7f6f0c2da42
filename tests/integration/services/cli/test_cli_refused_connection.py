"""PostgreSQL answering but refusing the connection (a wrong password, a database that does
not exist): before, ``migrate``, ``entities list``, ``alerts rules list`` and ``keys list``
ended in a traceback (exit 1); now one line saying what PostgreSQL said, never the password,
exit 1."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from shared.config import PostgresSettings

pytestmark = pytest.mark.integration

WRONG = "Wr0ngPassw0rdX"


@pytest.mark.parametrize("command", [["migrate"], ["entities", "list"], ["alerts", "rules", "list"], ["keys", "list"]])
@pytest.mark.parametrize("bad", ["password", "database"])
def test_a_refused_connection_is_one_line_exit_1(command: list[str], bad: str, pg_settings: PostgresSettings) -> None:
    parts = urlsplit(pg_settings.url.get_secret_value())
    if bad == "password":
        netloc = f"{parts.username}:{WRONG}@{parts.hostname}:{parts.port}"
        url, said = parts._replace(netloc=netloc).geturl(), "PostgreSQL refused the login: password authentication"
    else:
        url, said = parts._replace(path="/tw_no_such_db").geturl(), 'has no such database: database "tw_no_such_db"'
    done = subprocess.run(
        [sys.executable, "-m", "services", *command],
        env={"TW_POSTGRES__URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and WRONG not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert said in line and "TW_POSTGRES__URL" in line
