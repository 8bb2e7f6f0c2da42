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
        (json.dumps([{"key": "ACME"}]), "entry 0 (key 'ACME'): name: Field required"),
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


def _import(tmp_path: Path, entries: object, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, list[object]]:
    """Run ``entities import`` on ``entries``; the database is never reached (``_with_db`` records)."""
    calls: list[object] = []
    monkeypatch.setattr("services.cli.entities._with_db", calls.append)
    path = tmp_path / "watchlist.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(path)])
    return result.exit_code, result.stderr, calls


def test_import_checks_every_entry_like_the_api_and_applies_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = [
        {"key": "ok", "name": "Fine", "aliases": ["Fine"]},
        {"key": "tsla", "name": "Tesla", "aliases": "Tesla"},  # a string, not a list: not 5 one-letter aliases
        {"key": "bp", "name": "BP plc", "case_sensitive_alias": ["BP"]},  # a typo, not silently dropped
        {"key": "long", "name": "x" * 201},  # refused here, not by PostgreSQL
        {"key": "shell", "name": "Shell", "tickers": ["RDS-A", "7203"]},
        {"key": "blank", "name": "Blank", "aliases": ["  "]},
        {"name": "no key"},
        "not an object",
        {"key": "ok", "name": "Again"},
    ]
    code, err, calls = _import(tmp_path, entries, monkeypatch)
    assert code == 2, err
    assert calls == []  # nothing written
    for line in [
        "entry 1 (key 'tsla'): aliases: Input should be a valid list",
        "entry 2 (key 'bp'): case_sensitive_alias: Extra inputs are not permitted",
        "entry 3 (key 'long'): name: String should have at most 200 characters",
        "entry 4 (key 'shell'): tickers.0: Value error, a ticker matches as a cashtag",
        "entry 4 (key 'shell'): tickers.1: Value error, a ticker matches as a cashtag",
        "entry 5 (key 'blank'): aliases.0: String should have at least 1 character",
        "entry 6: key: required, a string",
        "entry 7: must be a JSON object",
        "entry 8 (key 'ok'): key: the same key as entry 0",
        "9 problem(s); nothing imported",
    ]:
        assert line in err, (line, err)
    assert "entry 0 (key 'ok'):" not in err


def test_import_of_good_entries_strips_whitespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [{"key": "TSLA", "name": " Tesla ", "aliases": ["Tesla "], "tickers": ["TSLA"], "group": "autos"}]
    code, err, calls = _import(tmp_path, entries, monkeypatch)
    assert code == 0, err
    assert len(calls) == 1  # one upsert
    from services.cli.entities import load_file

    [entity] = load_file(tmp_path / "watchlist.json")
    assert (entity.name, tuple(entity.aliases), tuple(entity.tickers)) == ("Tesla", ("Tesla",), ("TSLA",))


def test_import_of_a_non_list_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, err, calls = _import(tmp_path, {"key": "x", "name": "X"}, monkeypatch)
    assert (code, calls) == (2, [])
    assert "must hold a JSON list of entities" in err and "nothing imported" in err


def test_demo_watchlist_passes_the_checks() -> None:
    from services.cli.entities import load_file
    from services.ingest.sources import DEMO_WATCHLIST

    assert len(load_file(DEMO_WATCHLIST)) > 0


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--name", "Shell", "--ticker", "RDS-A"], "tickers.0: Value error, a ticker matches as a cashtag"),
        (["--name", "x" * 201], "name: String should have at most 200 characters"),
        (["--name", "Acme", "--alias", " "], "aliases.0: String should have at least 1 character"),
    ],
)
def test_add_checks_like_the_api(monkeypatch: pytest.MonkeyPatch, args: list[str], reason: str) -> None:
    calls: list[object] = []
    monkeypatch.setattr("services.cli.entities._with_db", calls.append)
    result = CliRunner().invoke(app, ["add", "ACME", *args])
    assert (result.exit_code, calls) == (2, []), result.output
    assert reason in result.stderr
