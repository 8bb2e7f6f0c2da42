"""A count option below 1 is a usage error (exit 2) before the command runs:
``dlq list --limit 0`` (or -1) printed "no dead letters", ``ingest demo --limit 0``
replayed every headline and ``--limit -3`` all but the last three, ``alerts list
--limit -1`` ended on PostgreSQL's "LIMIT must not be negative"."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from services.cli import alerts, app, dlq, ingest, ops

COMMANDS = [
    ["dlq", "list", "news.raw"],
    ["dlq", "replay", "news.raw"],
    ["alerts", "list"],
    ["ingest", "demo"],
    ["demo"],
]


def _got_past_usage_checks(*_: Any, **__: Any) -> Any:
    raise AssertionError("the command ran: its usage checks let the value through")


@pytest.fixture(autouse=True)
def _no_command_body(monkeypatch: pytest.MonkeyPatch) -> None:
    """What each command does first, replaced: nothing connects or starts, whatever the code."""
    monkeypatch.setattr(dlq, "ServiceSettings", _got_past_usage_checks)
    monkeypatch.setattr(alerts, "_tx", _got_past_usage_checks)
    monkeypatch.setattr(ingest, "demo_lines", _got_past_usage_checks)
    monkeypatch.setattr(ops, "StackSettings", _got_past_usage_checks)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_limit_below_one_is_a_usage_error(command: list[str], value: str) -> None:
    done = CliRunner().invoke(app, [*command, "--limit", value])
    assert done.exit_code == 2, (done.output, done.exception)
    said = " ".join(done.output.replace("│", " ").split())  # without the error panel's frame
    assert "Invalid value for '--limit'" in said and "greater than or equal to 1" in said


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_limit_of_one_gets_past_the_usage_checks(command: list[str]) -> None:
    done = CliRunner().invoke(app, [*command, "--limit", "1"])
    assert isinstance(done.exception, AssertionError), (done.output, done.exception)
