"""The alerter's sweep (its safety net for missed notifications) finds a key whose
aggregator transaction was still open at the previous sweep."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from services.aggregator.persist import store_batch
from services.alerter.app import SWEEP_LOOKBACK, SWEEP_MARGIN, Sweep, next_since, sweep_mark
from shared.config import PostgresSettings
from shared.db.session import make_engine, make_sessionmaker
from shared.events import Score, ScoredEvent

pytestmark = pytest.mark.integration
T0 = datetime(2026, 2, 4, 9, 0, tzinfo=UTC)


def scored(entity: str) -> ScoredEvent:
    probs = {"negative": 0.8, "neutral": 0.1, "positive": 0.1}
    return ScoredEvent(
        id=f"{entity}-1",
        stream="news",
        event_time=T0,
        received_time=T0,
        text="headline",
        entities=[entity, "_all"],
        sentiment=Score(label="negative", confidence=0.9, probs=probs, model="m", version="v1"),
    )


def slow_aggregator(
    pg: PostgresSettings, event: ScoredEvent, writing: threading.Event, commit: threading.Event
) -> None:
    """The aggregator's stage in its own thread and loop, holding its transaction open
    (buckets written, NOTIFY queued) until ``commit`` is set."""

    def hold() -> None:
        writing.set()
        commit.wait(timeout=60)

    async def go() -> None:
        engine = make_engine(pg)
        try:
            await store_batch(make_sessionmaker(engine), [event], before_commit=hold)
        finally:
            await engine.dispose()

    asyncio.run(go())


async def test_a_sweep_finds_a_key_whose_transaction_was_open_across_the_previous_sweep(
    sessions: Any, pg_settings: PostgresSettings, unique: str
) -> None:
    """A bucket's updated_at is its transaction's start. The sweep read from its own
    previous (local) time less 5 s, so a transaction open 7 s across a sweep, whose
    NOTIFY the alerter missed (LISTEN down), was never seen by any later sweep."""
    entity = f"SLOW{unique}"
    key = ("news", entity, "v1")
    sweeps = Sweep(sessions)
    await sweeps.recent_keys()  # the first sweep: from two hours back
    writing, commit = threading.Event(), threading.Event()
    writer = threading.Thread(target=slow_aggregator, args=(pg_settings, scored(entity), writing, commit))
    writer.start()
    try:
        assert await asyncio.to_thread(writing.wait, 30)
        await asyncio.sleep(7)
        mark = await sweep_mark(sessions)
        assert mark.oldest_writer is not None  # a session of our own role: its start is visible
        assert mark.now - mark.oldest_writer > SWEEP_MARGIN
        assert key not in await sweeps.recent_keys()  # not committed yet
    finally:
        commit.set()
        await asyncio.to_thread(writer.join, 30)
    assert key in await sweeps.recent_keys()


async def test_with_no_writer_the_sweep_bound_is_the_database_clock(sessions: Any) -> None:
    """The bound comes from PostgreSQL's clock, the one that dates the buckets, not from
    the alerter's (which may be skewed)."""
    mark = await sweep_mark(sessions)
    async with sessions() as s:
        db_now = (await s.execute(text("SELECT now()"))).scalar_one()
    assert mark.hidden_writer is False  # every session here is of our own role
    assert timedelta(0) <= db_now - mark.now < timedelta(seconds=5)


async def test_an_unrelated_open_transaction_does_not_hold_the_sweep_bound_back(sessions: Any, unique: str) -> None:
    """Any session holding an xid pinned the bound to its start: ``BEGIN; UPDATE
    alert_rules ...`` left idle made every sweep re-read (and re-evaluate) every key since,
    up to two hours' worth. Only transactions writing the aggregator's tables count; a
    read of the buckets in the same transaction (a lock, but no write) changes nothing."""
    key = ("news", f"IDLE{unique}", "v1")
    async with sessions() as idle:
        await idle.execute(text("SELECT count(*) FROM trend_hour"))
        await idle.execute(
            text("UPDATE alert_rules SET enabled = enabled WHERE id = (SELECT min(id) FROM alert_rules)")
        )
        assert (await idle.execute(text("SELECT pg_current_xact_id_if_assigned() IS NOT NULL"))).scalar_one()
        assert await store_batch(sessions, [scored(key[1])]) == 1
        await asyncio.sleep(SWEEP_MARGIN.total_seconds() + 1)
        mark = await sweep_mark(sessions)
        assert (mark.oldest_writer, mark.hidden_writer) == (None, False)
        assert next_since(mark, mark.now - SWEEP_LOOKBACK) == mark.now - SWEEP_MARGIN
        sweeps = Sweep(sessions)
        assert key in await sweeps.recent_keys()  # the first sweep: from two hours back
        assert key not in await sweeps.recent_keys()  # the next: from that sweep less the margin


async def test_a_transaction_with_only_its_ledger_ids_inserted_holds_the_bound(sessions: Any, unique: str) -> None:
    """The aggregator's first statement is the ledger insert: from then on its start dates
    the buckets it is about to write."""
    async with sessions() as batch:
        await batch.execute(
            text("INSERT INTO counted_events (id, stream) VALUES (:id, 'news')"), {"id": f"LEDGER{unique}"}
        )
        started = (await batch.execute(text("SELECT now()"))).scalar_one()
        await asyncio.sleep(1)
        mark = await sweep_mark(sessions)
        assert mark.oldest_writer == started
        assert next_since(mark, mark.now - SWEEP_LOOKBACK) == started - SWEEP_MARGIN
