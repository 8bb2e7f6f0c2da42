"""Backtests on the real database: bounded in span, observations kept only for a chart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alert_scenario import T0, add_rule, timeline
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner, Result

from services.aggregator.persist import store_batch
from services.alerter.backtest import MAX_SPAN, PLOTTED_KEYS, RangeRefused, backtest
from services.alerter.config import AlerterSettings
from services.cli.alerts import app
from shared.config import PostgresSettings
from shared.db.models import AlertRule

pytestmark = pytest.mark.integration


async def test_observations_are_kept_only_for_the_chart_and_the_events_are_the_same(
    service_settings: Callable[..., Any], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """Without ``--plot`` no observation is kept (it was every minute of every key: 16 MB
    per key per 30 days), and a key is walked only until nothing more can happen (its data
    and open alert are behind); with it, those of the keys the chart draws. The events are
    the same either way."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    entities = [f"BT{i}{unique}" for i in range(PLOTTED_KEYS + 2)]
    rule_id = await add_rule(sessions, f"bt-{unique}", entities[0], scope={"entities": entities})
    for i, entity in enumerate(entities):
        await store_batch(sessions, timeline(entity, 80, [(60, 65)] if i % 2 else []))
    end = T0 + timedelta(days=7)
    async with sessions() as s:
        rule = await s.get(AlertRule, rule_id)
        assert rule is not None
        events, series = await backtest(s, rule, settings, T0, end)
        charted, kept = await backtest(s, rule, settings, T0, end, keep_series=True)
    assert series == {}
    assert [(e.kind, e.entity, e.alert_id) for e in events] == [(e.kind, e.entity, e.alert_id) for e in charted]
    assert [e.kind for e in events] == ["fire", "resolve"] * (len(entities) // 2)
    assert len(kept) == PLOTTED_KEYS and all(len(obs) == 7 * 24 * 60 + 1 for obs in kept.values())


async def test_a_range_too_long_or_out_of_the_calendar_is_refused(
    service_settings: Callable[..., Any],
    sessions: async_sessionmaker[AsyncSession],
    pg_settings: PostgresSettings,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--from 0001-01-01`` exited 1 on a raw OverflowError (the baseline history counted
    back from it); a span longer than 92 days ran on, minute by minute, to its end."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    rule_id = await add_rule(sessions, f"range-{unique}", f"RANGE{unique}")
    year_one = datetime(1, 1, 1, tzinfo=UTC)
    async with sessions() as s:
        rule = await s.get(AlertRule, rule_id)
        assert rule is not None
        with pytest.raises(RangeRefused, match="too near the calendar's ends"):
            await backtest(s, rule, settings, year_one, year_one + timedelta(days=1))
        with pytest.raises(RangeRefused, match="92 days"):
            await backtest(s, rule, settings, T0, T0 + MAX_SPAN + timedelta(minutes=1))
    monkeypatch.setenv("TW_POSTGRES__URL", pg_settings.url.get_secret_value())
    args = ["backtest", "--rule", f"range-{unique}", "--from", "0001-01-01", "--to", "0001-01-02"]
    done = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert done.exit_code == 2, done.output
    assert "too near the calendar's ends" in done.output and "Traceback" not in done.output


async def _plot_backtest(
    sessions: async_sessionmaker[AsyncSession], pg_settings: PostgresSettings, unique: str, plot: Path
) -> Result:
    """``alerts backtest --plot`` on a rule whose entity has one negative spike."""
    entity = f"PLOT{unique}"
    await add_rule(sessions, f"plot-{unique}", entity)
    await store_batch(sessions, timeline(entity, 80, [(60, 65)]))
    args = [
        "backtest",
        "--rule",
        f"plot-{unique}",
        "--from",
        T0.isoformat(),
        "--to",
        (T0 + timedelta(hours=3)).isoformat(),
    ]
    env = {"TW_POSTGRES__URL": pg_settings.url.get_secret_value()}
    return await asyncio.to_thread(CliRunner().invoke, app, [*args, "--plot", str(plot)], env=env)


async def test_plot_writes_a_png_chart_and_prints_the_alerts(
    sessions: async_sessionmaker[AsyncSession], pg_settings: PostgresSettings, unique: str, tmp_path: Path
) -> None:
    """The README's ``--plot spikes.png`` ended in ModuleNotFoundError (matplotlib was in no
    dependency list), before any alert was printed."""
    chart = tmp_path / "out.png"
    done = await _plot_backtest(sessions, pg_settings, unique, chart)
    assert done.exit_code == 0, done.output
    assert "1 alert would have fired" in done.output and f"chart written to {chart}" in done.output
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


async def test_a_chart_that_cannot_be_written_does_not_hide_the_alerts(
    sessions: async_sessionmaker[AsyncSession], pg_settings: PostgresSettings, unique: str, tmp_path: Path
) -> None:
    """The chart was drawn before the alerts were printed, so a failed chart hid them all."""
    done = await _plot_backtest(sessions, pg_settings, unique, tmp_path / "missing" / "out.png")
    assert done.exit_code == 1, done.output
    assert "1 alert would have fired" in done.output and " fire " in done.output
    assert "error: cannot write the chart to" in done.output and "Traceback" not in done.output
