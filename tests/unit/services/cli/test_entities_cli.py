"""``tonewatch entities import``: a bad watchlist file is refused before any database work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.entities import app


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[{", "JSONDecodeError"),
        (json.dumps([{"key": "ACME"}]), "KeyError: 'name'"),
        (json.dumps([{"key": "ACME", "name": "Acme\u0000"}]), "must not contain control characters"),
        (json.dumps([{"key": "has space", "name": "Acme"}]), "invalid entity key"),
    ],
)
def test_bad_watchlist_file_is_a_clear_error(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "watchlist.json"
    path.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(path)])
    assert result.exit_code == 2, result.output
    assert reason in result.stderr and "nothing imported" in result.stderr
