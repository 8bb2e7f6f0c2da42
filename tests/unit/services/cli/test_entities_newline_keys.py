"""``tonewatch entities add`` and ``import`` refuse a key with a final newline (Python's ``$``
matched before it, so ``re.match`` took ``"acme\\n"``: a key the API cannot name); ``list``
shows such a key stored before, quoted on its own line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import entities as entities_cli
from services.cli.entities import app
from shared.entities import WatchedEntity


def _refuse(*_: object) -> None:
    raise AssertionError("the command reached the database")


def test_add_refuses_a_key_ending_in_a_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entities_cli, "_with_db", _refuse)
    result = CliRunner().invoke(app, ["add", "acme\n", "--name", "Acme"])
    assert result.exit_code == 2, result.output
    assert "invalid entity key 'acme\\n'" in result.stderr, result.stderr


def test_import_refuses_a_key_ending_in_a_newline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entities_cli, "_with_db", _refuse)
    path = tmp_path / "watchlist.json"
    path.write_text(json.dumps([{"key": "ok", "name": "Ok"}, {"key": "acme\n", "name": "Acme"}]), encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(path)])
    assert result.exit_code == 2, result.output
    assert "entry 1 (key 'acme\\n'): key: invalid entity key 'acme\\n'" in result.stderr, result.stderr
    assert "nothing imported" in result.stderr


def test_list_quotes_a_stored_key_ending_in_a_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [WatchedEntity("acme\n", "Acme", ("Acme",), stored=True), WatchedEntity("bp", "BP", ("BP plc",))]
    monkeypatch.setattr(entities_cli, "_with_db", lambda _fn: rows)
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("'acme\\n'") and "Acme" in lines[0] and lines[1].startswith("bp ")
    listed = json.loads(CliRunner().invoke(app, ["list", "--json"]).stdout)
    assert [e["key"] for e in listed] == ["acme\n", "bp"]  # JSON says it as it is
