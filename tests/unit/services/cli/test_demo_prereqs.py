"""`tonewatch demo` on a machine without the stack's prerequisites: exit 2 with the install
command, as `tonewatch stack up`, never a traceback (manager.up replaced by a fake)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from services.cli import app
from shared.stack import manager
from shared.stack.manager import StackReport
from shared.stack.prereqs import MissingPrereqs, Prereq
from shared.stack.process import ProcessError
from shared.stack.settings import StackSettings


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (MissingPrereqs([Prereq("redis-server", "redis-server", False, "-")]), "apt-get install -y redis-server"),
        (ProcessError("apt-get failed (exit 100): E: Unable to locate package"), "Unable to locate package"),
    ],
)
def test_demo_without_prerequisites_exits_2_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch, error: Exception, shown: str
) -> None:
    def fail(settings: StackSettings, log: object, *, install_prereqs: bool) -> StackReport:
        raise error

    monkeypatch.setattr(manager, "up", fail)
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert shown in result.stderr and "Traceback" not in result.output
