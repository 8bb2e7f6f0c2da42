"""``alerts backtest --plot`` without matplotlib: refused in one line before any backtest work."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from services.alerter.backtest import PlotUnavailable, check_plot
from services.cli import alerts

ARGS = ["backtest", "--rule", "r", "--from", "2026-03-02", "--to", "2026-03-03"]


def test_without_matplotlib_the_check_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotUnavailable, match=r"pip install -e '\.\[plot\]'"):
        check_plot()


def test_plot_without_matplotlib_is_refused_before_the_backtest(monkeypatch: pytest.MonkeyPatch) -> None:
    """It ended in ModuleNotFoundError (exit 1) after the whole backtest, printing no alert."""
    ran: list[Any] = []
    monkeypatch.setattr(alerts, "_tx", ran.append)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    done = CliRunner().invoke(alerts.app, [*ARGS, "--plot", "out.png"])
    assert done.exit_code == 2, done.output
    assert done.output == "error: --plot needs matplotlib: pip install -e '.[plot]' in the tonewatch checkout\n"
    assert ran == []
