"""`tonewatch stack` output and exit codes (manager replaced by fakes)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from services.cli.stack import app
from shared.stack import manager
from shared.stack.component import ComponentStatus
from shared.stack.manager import StackReport
from shared.stack.prereqs import MissingPrereqs, Prereq
from shared.stack.settings import StackSettings


def _report(action: str, healthy: bool) -> StackReport:
    comp = ComponentStatus("redis", running=healthy, healthy=healthy, pid=1 if healthy else None, port=1, log_file="l")
    return StackReport(action=action, ok=healthy, elapsed_s=0.1, state_dir="/s", components=(comp,))


@pytest.mark.parametrize(("healthy", "code"), [(True, 0), (False, 1)])
def test_status_exit_code_and_json(monkeypatch: pytest.MonkeyPatch, healthy: bool, code: int) -> None:
    monkeypatch.setattr(manager, "status", lambda settings: _report("status", healthy))
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == code
    data = json.loads(result.stdout)
    assert data["components"]["redis"]["healthy"] is healthy
    assert data["ok"] is healthy


def test_up_missing_prereqs_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(settings: StackSettings, log: object, *, install_prereqs: bool) -> StackReport:
        raise MissingPrereqs([Prereq("redis-server", "redis-server", False, "not found")])

    monkeypatch.setattr(manager, "up", fail)
    result = CliRunner().invoke(app, ["up", "--json"])
    assert result.exit_code == 2
    assert "apt-get install -y redis-server" in json.loads(result.stdout)["error"]


def test_up_passes_install_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []

    def fake(settings: StackSettings, log: object, *, install_prereqs: bool) -> StackReport:
        seen.append(install_prereqs)
        return _report("up", True)

    monkeypatch.setattr(manager, "up", fake)
    result = CliRunner().invoke(app, ["up", "--install-prereqs"])
    assert result.exit_code == 0, result.output
    assert seen == [True]
    assert "redis" in result.stdout


def test_down_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manager, "down", lambda settings, log: _report("down", False))
    result = CliRunner().invoke(app, ["down"])
    assert result.exit_code == 1  # the fake report is not ok
