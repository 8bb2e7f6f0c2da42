"""Where the alerter's next sweep reads from: never after the start of a transaction
that was writing when the previous sweep read, and never more than the lookback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.alerter.app import SWEEP_LOOKBACK, SWEEP_MARGIN, SweepMark, next_since

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
