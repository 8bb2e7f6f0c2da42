"""`tonewatch run all` with `TW_METRICS_PORT` set: every child bound the same port, the
second failed with "Address already in use", and `run all` stopped everything. Each child
that serves metrics now gets its own port, from TW_METRICS_PORT up."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

import services.cli.core as core
from services.cli import app


class _Exited:
    def __init__(self, env: dict[str, str] | None) -> None:
        self.env = env

    def poll(self) -> int:
        return 0

    def wait(self, timeout: float | None = None) -> int:
        return 0


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, str] | None]:
    seen: dict[str, dict[str, str] | None] = {}

    def popen(args: list[str], env: dict[str, str] | None = None, **_: Any) -> _Exited:
        seen[args[-1]] = env
        return _Exited(env)

    monkeypatch.setattr(core.subprocess, "Popen", popen)
    monkeypatch.setattr(core.signal, "signal", lambda *a: None)
    return seen


def test_each_child_serves_metrics_on_its_own_port(
    started: dict[str, dict[str, str] | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_METRICS_PORT", "9100")
    result = CliRunner().invoke(app, ["run", "all"])
    ports = {name: env["TW_METRICS_PORT"] for name, env in started.items() if env is not None}
    assert ports == {"classifier": "9100", "aggregator": "9101", "router": "9102", "alerter": "9103"}
    assert set(started) == {"classifier", "aggregator", "router", "alerter", "api"}
    assert "metrics: classifier :9100, aggregator :9101, router :9102, alerter :9103" in result.output


def test_without_a_metrics_port_the_children_inherit_the_environment(
    started: dict[str, dict[str, str] | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TW_METRICS_PORT", raising=False)
    CliRunner().invoke(app, ["run", "all"])
    assert set(started) == {"classifier", "aggregator", "router", "alerter", "api"}
    assert all(env is None for env in started.values())


def test_a_port_too_high_for_every_child_is_refused_before_any_starts(
    started: dict[str, dict[str, str] | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_METRICS_PORT", "65534")
    result = CliRunner().invoke(app, ["run", "all"])
    assert result.exit_code == 2
    assert "TW_METRICS_PORT=65534 leaves no room for 4 services' ports" in result.output
    assert started == {}
