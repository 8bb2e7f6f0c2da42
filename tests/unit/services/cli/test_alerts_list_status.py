"""``tonewatch alerts list --status`` takes only a status an alert can have (the API answers
422 to any other); an unknown one is an error (exit 2), not an empty list."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from services.cli import alerts as alerts_cli
from services.cli.alerts import app


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The database work asked for (none is done: an empty list of alerts)."""
    seen: list[object] = []

    def record(fn: object) -> list[object]:
        seen.append(fn)
        return []

    monkeypatch.setattr(alerts_cli, "_tx", record)
    return seen


@pytest.mark.parametrize("status", ["bogus", "Open", "", "open "])
def test_an_unknown_status_is_an_error(calls: list[object], status: str) -> None:
    result = CliRunner().invoke(app, ["list", "--status", status])
    assert (result.exit_code, calls) == (2, []), result.output
    assert result.stderr == f"error: unknown status {status!r}; choose one of open, acknowledged, resolved\n"


@pytest.mark.parametrize("status", ["open", "acknowledged", "resolved"])
def test_a_known_status_lists(calls: list[object], status: str) -> None:
    result = CliRunner().invoke(app, ["list", "--status", status, "--json"])
    assert (result.exit_code, len(calls), result.stdout) == (0, 1, "[]\n"), result.output
