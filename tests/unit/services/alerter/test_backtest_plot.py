"""``alerts backtest --plot`` without matplotlib or with a path not ending in .png: refused in one
line before any backtest work."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from services.alerter.backtest import PlotUnavailable, check_plot, check_plot_path, plot
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


@pytest.mark.parametrize("path", ["out.xyz", "chart", "out.png.txt", "out.jpg", ""])
def test_a_plot_path_not_ending_in_png_is_refused_before_the_backtest(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """``--plot out.xyz`` ended in matplotlib's ValueError traceback after the backtest, and
    ``--plot chart`` wrote ``chart.png`` while printing "chart written to chart"."""
    ran: list[Any] = []
    monkeypatch.setattr(alerts, "_tx", ran.append)
    done = CliRunner().invoke(alerts.app, [*ARGS, "--plot", path])
    assert done.exit_code == 2, done.output
    shown = str(Path(path))
    assert done.output == f"error: --plot writes a PNG chart: give a path ending in .png, not {shown!r}\n"
    assert ran == []


@pytest.mark.parametrize("name", ["out.png", "OUT.PNG"])
def test_a_png_path_passes_the_check(name: str) -> None:
    check_plot_path(Path(name))


def test_the_chart_is_a_png_at_exactly_the_path_given(tmp_path: Path) -> None:
    """The file named in "chart written to PATH" is the one written, whatever case its suffix has."""
    path = tmp_path / "Chart.PNG"
    plot({}, [], path)
    assert [p.name for p in tmp_path.iterdir()] == ["Chart.PNG"]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
