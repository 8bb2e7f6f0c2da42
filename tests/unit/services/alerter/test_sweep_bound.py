"""Where the alerter's next sweep reads from: never after the start of a transaction
that was writing when the previous sweep read, and never more than the lookback."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from services.alerter.app import _SWEEP_MARK, SWEEP_LOOKBACK, SWEEP_MARGIN, SweepMark, next_since
from shared.metrics import metrics

NOW = datetime(2026, 4, 3, 10, 0, tzinfo=UTC)
SINCE = NOW - timedelta(seconds=35)  # where the sweep that took the mark read from


def test_with_no_writer_the_next_sweep_reads_from_the_mark_less_the_margin() -> None:
    assert next_since(SweepMark(NOW, None, False), SINCE) == NOW - SWEEP_MARGIN


def test_the_next_sweep_reads_from_the_oldest_open_writers_start() -> None:
    writer = NOW - timedelta(seconds=8)
    assert next_since(SweepMark(NOW, writer, False), SINCE) == writer - SWEEP_MARGIN


def test_a_writer_whose_start_is_hidden_keeps_the_bound_where_it_was() -> None:
    """Another role's session shows its xid but not its start: it may have begun at any
    time since the previous mark."""
    assert next_since(SweepMark(NOW, None, True), SINCE) == SINCE
    older = NOW - timedelta(minutes=5)
    assert next_since(SweepMark(NOW, older, True), SINCE) == older - SWEEP_MARGIN


def test_the_bound_never_reaches_back_more_than_the_lookback() -> None:
    """A transaction left open for a day would otherwise make every sweep re-evaluate a
    day's keys."""
    stale = NOW - timedelta(days=1)
    assert next_since(SweepMark(NOW, stale, False), SINCE) == NOW - SWEEP_LOOKBACK
    assert next_since(SweepMark(NOW, None, True), stale) == NOW - SWEEP_LOOKBACK


def cuts() -> float:
    return float(metrics().sweep_lookback_cut._value.get())


def test_a_cut_by_the_lookback_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """It was silent: the commits of a writer open longer than the lookback were then
    never swept, and nothing said so."""
    stale = NOW - timedelta(days=1)
    before = cuts()
    with caplog.at_level(logging.WARNING, logger="tonewatch.alerter"):
        assert next_since(SweepMark(NOW, stale, False), SINCE) == NOW - SWEEP_LOOKBACK
    assert cuts() - before == 1
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "reads back at most 2:00:00" in warning
    assert f"open since {stale}" in warning


def test_a_cut_with_a_hidden_writer_names_the_other_role(caplog: pytest.LogCaptureFixture) -> None:
    before = cuts()
    with caplog.at_level(logging.WARNING, logger="tonewatch.alerter"):
        next_since(SweepMark(NOW, NOW - timedelta(seconds=3), True), NOW - timedelta(hours=3))
    assert cuts() - before == 1
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "another role" in warning


def test_within_the_lookback_nothing_is_logged_or_counted(caplog: pytest.LogCaptureFixture) -> None:
    before = cuts()
    with caplog.at_level(logging.WARNING, logger="tonewatch.alerter"):
        next_since(SweepMark(NOW, NOW - SWEEP_LOOKBACK + SWEEP_MARGIN, False), SINCE)  # exactly at the floor
        next_since(SweepMark(NOW, None, True), NOW - SWEEP_LOOKBACK)
        next_since(SweepMark(NOW, None, False), SINCE)
    assert cuts() == before
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_mark_counts_only_writers_of_the_aggregators_batch_tables() -> None:
    """Any session holding an xid pinned the bound (an idle ``UPDATE alert_rules``); the
    mark now asks for write locks on the tables the aggregator's batch writes, the ledger
    (its first statement) and both bucket tables. The query itself is checked against
    PostgreSQL in tests/integration/services/alerter/test_sweep.py."""
    sql = str(_SWEEP_MARK)
    assert "backend_xid" not in sql
    assert "pg_locks" in sql and "RowExclusiveLock" in sql
    for table in ("counted_events", "trend_minute", "trend_hour"):
        assert f"CAST('{table}' AS regclass)" in sql
