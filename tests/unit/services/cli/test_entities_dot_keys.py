"""``tonewatch entities import`` and ``add`` refuse the keys ``.`` and ``..``: the key pattern
allows them, but no URL path can name them (``/v1/entities/./messages``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import entities as entities_cli
from services.cli.entities import app


@pytest.fixture(autouse=True)
def no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any database work is a failure here (and never reaches the local stack's database)."""

    def refuse(*_: object) -> None:
        raise AssertionError("the command reached the database")

    monkeypatch.setattr(entities_cli, "_with_db", refuse)


@pytest.mark.parametrize("key", [".", ".."])
def test_import_refuses_a_dot_key_naming_it(tmp_path: Path, key: str) -> None:
    """Every entry is checked first: nothing is imported."""
    path = tmp_path / "watchlist.json"
    path.write_text(json.dumps([{"key": "ACME", "name": "Acme"}, {"key": key, "name": "Dot"}]), encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(path)])
    assert result.exit_code == 2, result.output
    assert f"entry 1 (key {key!r}): invalid entity key {key!r}" in result.stderr, result.stderr
    assert "URL path" in result.stderr and "nothing imported" in result.stderr


@pytest.mark.parametrize("key", [".", ".."])
def test_add_refuses_a_dot_key_before_any_database_work(key: str) -> None:
    result = CliRunner().invoke(app, ["add", key, "--name", "Dot"])
    assert result.exit_code == 2, result.output
    assert f"invalid entity key {key!r}" in result.stderr, result.stderr
