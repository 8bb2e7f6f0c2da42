"""``tonewatch entities import`` against the real database: a file with any bad entry
writes nothing; a good one is imported trimmed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.entities import app
from shared.config import PostgresSettings

pytestmark = pytest.mark.integration
Invoke = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("TW_POSTGRES__URL", pg_settings.url.get_secret_value())
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.stdout, result.stderr

    return invoke


def _listed(run: Invoke, key: str) -> dict[str, object] | None:
    code, out, err = run("list", "--json")
    assert code == 0, err
    return next((e for e in json.loads(out) if e["key"] == key), None)


def test_import_applies_nothing_when_an_entry_is_bad(run: Invoke, unique: str, tmp_path: Path) -> None:
    good = {"key": f"ok{unique}", "name": "Fine", "aliases": ["Fine"]}
    entries = [
        good,
        {"key": f"ts{unique}", "name": "Tesla", "aliases": "Tesla"},
        {"key": f"ln{unique}", "name": "x" * 201},
    ]
    path = tmp_path / "watchlist.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    code, _, err = run("import", str(path))
    assert code == 2, err
    assert f"entry 1 (key 'ts{unique}'): aliases: Input should be a valid list" in err
    assert f"entry 2 (key 'ln{unique}'): name: String should have at most 200 characters" in err
    assert "Traceback" not in err and "nothing imported" in err
    assert _listed(run, f"ok{unique}") is None

    path.write_text(json.dumps([{**good, "name": " Fine ", "aliases": ["Fine "]}]), encoding="utf-8")
    code, out, err = run("import", str(path))
    assert code == 0, (err, out)
    assert "imported 1 entities" in out
    row = _listed(run, f"ok{unique}")
    assert row is not None and (row["name"], row["aliases"]) == ("Fine", ["Fine"])
    assert run("remove", f"ok{unique}")[0] == 0
