"""`tonewatch run all` with `TW_METRICS_PORT` set: every child bound the same port, the
second failed with "Address already in use", and `run all` stopped everything. Each child
that serves metrics now gets its own port, from TW_METRICS_PORT up. The API's port (TW_API_PORT,
8080 by default) is skipped, so TW_METRICS_PORT=8077 no longer gives the alerter 8080, and a
TW_METRICS_PORT that is the API's port itself is refused before anything starts."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

import services.cli as cli
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
    monkeypatch.delenv("TW_API_PORT", raising=False)
    return seen


def _ports(started: dict[str, dict[str, str] | None]) -> dict[str, str]:
    return {name: env["TW_METRICS_PORT"] for name, env in started.items() if env is not None}


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


def test_the_api_default_port_is_skipped(
    started: dict[str, dict[str, str] | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_METRICS_PORT", "8077")
    result = CliRunner().invoke(app, ["run", "all"])
    assert _ports(started) == {"classifier": "8077", "aggregator": "8078", "router": "8079", "alerter": "8081"}
    assert "metrics: classifier :8077, aggregator :8078, router :8079, alerter :8081" in result.output


def test_the_port_tw_api_port_sets_is_skipped(
    started: dict[str, dict[str, str] | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_METRICS_PORT", "9100")
    monkeypatch.setenv("TW_API_PORT", "9101")
    CliRunner().invoke(app, ["run", "all"])
    assert _ports(started) == {"classifier": "9100", "aggregator": "9102", "router": "9103", "alerter": "9104"}


def test_a_metrics_port_that_is_the_api_port_is_refused_before_any_starts(
    started: dict[str, dict[str, str] | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_METRICS_PORT", "8080")
    result = CliRunner().invoke(app, ["run", "all"])
    assert result.exit_code == 2
    assert result.output == "error: TW_METRICS_PORT=8080 is the API's port (TW_API_PORT); choose another\n"
    assert started == {}


def test_a_bad_api_port_is_an_invalid_configuration(
    started: dict[str, dict[str, str] | None], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TW_METRICS_PORT", "9100")
    monkeypatch.setenv("TW_API_PORT", "0")
    monkeypatch.setattr("sys.argv", ["tonewatch", "run", "all"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: invalid configuration (ApiSettings): TW_API_PORT:"), line
    assert started == {}


def test_a_bad_metrics_port_is_an_invalid_configuration_without_its_value(
    started: dict[str, dict[str, str] | None], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was caught as a ValueError and printed whole: pydantic's several lines, input included."""
    monkeypatch.setenv("TW_METRICS_PORT", "s3cret-not-a-port")
    monkeypatch.setattr("sys.argv", ["tonewatch", "run", "all"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: invalid configuration (ServiceSettings): ") and "s3cret" not in line, line
    assert started == {}
