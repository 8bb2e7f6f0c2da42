"""``tonewatch keys`` against the real database: create prints the key once, list never
shows secrets, revoke by prefix or id."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from services.api.auth import KEY_PATTERN
from services.cli.keys import app
from shared.config import PostgresSettings

pytestmark = pytest.mark.integration
Invoke = Callable[..., tuple[int, str]]


@pytest.fixture
def run(pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("TW_POSTGRES__URL", pg_settings.url.get_secret_value())
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.stdout

    return invoke


def test_create_list_revoke(run: Invoke) -> None:
    code, out = run("create", "--name", "ci-bot", "--scope", "write", "--json")
    assert code == 0, out
    created = json.loads(out)
    assert KEY_PATTERN.match(created["key"]) and created["scopes"] == ["write"] and created["revoked_at"] is None
    code, out = run("create", "--name", "human", "--scope", "read")
    assert code == 0 and KEY_PATTERN.match(out.strip().splitlines()[0])

    code, out = run("list", "--json")
    listed = {k["prefix"]: k for k in json.loads(out)}
    assert created["prefix"] in listed and "key" not in listed[created["prefix"]]
    code, out = run("list")
    assert code == 0 and created["key"] not in out and f"tw_{created['prefix']}_" in out

    code, out = run("revoke", created["prefix"], "--json")
    assert code == 0 and json.loads(out)["revoked_at"] is not None
    code, out = run("revoke", str(created["id"]))
    assert code == 0 and "revoked" in out
    assert run("revoke", "zzzzzzzz")[0] == 1
    assert run("create", "--name", "x", "--scope", "root")[0] == 2
