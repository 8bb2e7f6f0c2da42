"""The live feed's poller on the real database: it sees every writer through the
``alerts_mark_change`` trigger, loses no transaction that commits out of order, and
reads only what changed. Polls are driven by hand (the background poll waits an hour)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from integration.services.api.helpers import insert_alert, insert_rule
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session

from services.api import alert_feed
from services.api.alert_feed import POLL_MAX_ALERTS, AlertFeed, AlertOut, Resync, fetch_alerts
from shared.config import PostgresSettings
from shared.db.session import make_engine

pytestmark = pytest.mark.integration
OLD = datetime(2027, 6, 1, tzinfo=UTC)  # replayed history: timestamps say nothing about order


def _insert_sql(alert_id: str, rule_id: int, status: str = "open") -> str:
    """A plain SQL insert that names no change marker."""
    return (
        "INSERT INTO alerts (id, rule_id, entity, stream, episode, status, severity, window_start, "
        "window_end, fired_at, explanation, model_version) VALUES "
        f"('{alert_id}', {rule_id}, 'e-{alert_id}', 'news', '2027-06-01', '{status}', 'warning', "
        "'2027-06-01', '2027-06-01 00:05', '2027-06-01 00:05', '{}', 'v1')"
    )


async def _sql(sessions: async_sessionmaker[AsyncSession], *statements: str) -> None:
    async with sessions.begin() as s:
        for statement in statements:
            await s.execute(text(statement))


async def _marker(sessions: async_sessionmaker[AsyncSession], alert_id: str) -> int:
    async with sessions() as s:
        return int((await s.execute(text(f"SELECT changed_xid FROM alerts WHERE id = '{alert_id}'"))).scalar_one())


def _sent(alerts: list[AlertOut]) -> list[tuple[str, str]]:
    return sorted((a.id, a.status) for a in alerts)


@pytest.fixture
async def feed(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AlertFeed]:
    feed = AlertFeed(sessions, interval_s=3600)
    yield feed
    await feed.stop()


async def test_a_plain_sql_insert_and_status_change_are_sent(
    feed: AlertFeed, sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    a = f"sql-{unique}"
    async with feed.subscribe() as queue:
        await _sql(sessions, _insert_sql(a, rule_id))
        assert _sent(await feed.poll_once()) == [(a, "open")]
        await _sql(sessions, f"UPDATE alerts SET status = 'acknowledged', acknowledged_at = now() WHERE id = '{a}'")
        assert _sent(await feed.poll_once()) == [(a, "acknowledged")]
        assert [queue.get_nowait().status for _ in range(2)] == ["open", "acknowledged"]

        # Bookkeeping that leaves the status as it was is not news, and keeps the marker;
        # a marker a writer sets itself is overwritten.
        before = await _marker(sessions, a)
        await _sql(sessions, f"UPDATE alerts SET notified = true, changed_xid = '1' WHERE id = '{a}'")
        assert await _marker(sessions, a) == before
        assert await feed.poll_once() == []
        await _sql(sessions, f"UPDATE alerts SET status = 'resolved', changed_xid = '1' WHERE id = '{a}'")
        assert await _marker(sessions, a) > before
        assert _sent(await feed.poll_once()) == [(a, "resolved")]
        assert await feed.poll_once() == [] and queue.get_nowait().status == "resolved" and queue.empty()


async def test_a_transaction_that_commits_after_a_poll_saw_a_later_one_is_sent(
    feed: AlertFeed, sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """T1 takes its transaction id (and its now()) first and commits last, after a poll has
    seen T2's later change: a cursor on the largest marker, sequence value or timestamp
    seen would skip T1's changes for ever."""
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    a0, a1, a2 = f"t0-{unique}", f"t1-{unique}", f"t2-{unique}"
    await insert_alert(sessions, alert_id=a0, rule_id=rule_id, entity=f"e0-{unique}", at=OLD)
    async with feed.subscribe() as queue:
        async with sessions() as t1:
            await t1.begin()
            await t1.execute(text(_insert_sql(a1, rule_id)))
            await t1.execute(text(f"UPDATE alerts SET status = 'resolved' WHERE id = '{a0}'"))
            t1_xid = int((await t1.execute(select(func.pg_current_xact_id()))).scalar_one())

            await _sql(sessions, _insert_sql(a2, rule_id))  # T2, committed while T1 is open
            assert await _marker(sessions, a2) > t1_xid  # the hard case: T1's marker is the smaller
            assert _sent(await feed.poll_once()) == [(a2, "open")]  # T1 is not visible yet
            await t1.commit()

        assert _sent(await feed.poll_once()) == [(a0, "resolved"), (a1, "open")]
        assert await feed.poll_once() == []
        assert sorted(queue.get_nowait().id for _ in range(3)) == sorted([a0, a1, a2]) and queue.empty()


async def _cluster_xmin_passes(sessions: async_sessionmaker[AsyncSession], xid: int) -> None:
    """Wait until no transaction older than ``xid`` is still running anywhere on the server
    (other suites share it): until then, rows written by ``xid`` are legitimately re-read."""
    for _ in range(1200):
        async with sessions() as s:
            xmin = int((await s.execute(select(func.pg_snapshot_xmin(func.pg_current_snapshot())))).scalar_one())
        if xmin > xid:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"a transaction older than {xid} stayed open on the server; cannot check the row counts")


async def test_a_poll_reads_only_changed_alerts(pg_settings: PostgresSettings, unique: str) -> None:
    """With many alerts already there, the baseline and a poll after one status change read
    a handful of rows, not the table. Rows are counted as the database returns them to the
    feed's sessions."""
    engine = make_engine(pg_settings)

    class Counting(Session):
        pass

    rows_read: list[int] = []

    @event.listens_for(Counting, "do_orm_execute")
    def _count(state: ORMExecuteState) -> Any:
        if not state.is_select:
            return None
        frozen = state.invoke_statement().freeze()
        rows_read.append(len(frozen.data))
        return frozen()

    sessions = async_sessionmaker(engine, sync_session_class=Counting, expire_on_commit=False)
    feed = AlertFeed(sessions, interval_s=3600)
    try:
        rule_id = await insert_rule(sessions, f"rule-{unique}")
        async with sessions.begin() as s:
            await s.execute(
                text(
                    "INSERT INTO alerts (id, rule_id, entity, stream, episode, status, severity, window_start, "
                    "window_end, fired_at, explanation, model_version) "
                    "SELECT :prefix || n, :rule, 'bulk', 'news', t, 'open', 'warning', t, t, t, '{}', 'v1' "
                    "FROM generate_series(1, 500) AS n, "
                    "LATERAL (SELECT '2027-06-01'::timestamptz + n * interval '1 hour') AS w(t)"
                ),
                {"prefix": f"bulk-{unique}-", "rule": rule_id},
            )
            bulk_xid = int((await s.execute(select(func.pg_current_xact_id()))).scalar_one())
        await _cluster_xmin_passes(sessions, bulk_xid)

        rows_read.clear()
        async with feed.subscribe():
            assert sum(rows_read) <= 2, rows_read  # the baseline: its xmin, and no alert
            await _sql(sessions, f"UPDATE alerts SET status = 'resolved' WHERE id = 'bulk-{unique}-7'")
            rows_read.clear()
            sent = await feed.poll_once()
            assert _sent(sent) == [(f"bulk-{unique}-7", "resolved")]
            # its xmin, the one changed marker (and any other test's change since the
            # baseline: none here), the one alert fetched
            assert sum(rows_read) <= 3, rows_read
            rows_read.clear()
            assert await feed.poll_once() == []
            assert sum(rows_read) <= 2, rows_read
    finally:
        await feed.stop()
        await engine.dispose()


async def test_fetch_alerts_takes_more_ids_than_a_query_has_parameters(
    sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """asyncpg refuses more than 32,767 parameters: with one per id, a transaction that
    changed more alerts made every later poll fail the same way, for good."""
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    wanted = [f"many-{unique}-{n}" for n in range(2)]
    for n, alert_id in enumerate(wanted):
        await insert_alert(sessions, alert_id=alert_id, rule_id=rule_id, entity=f"e{n}-{unique}", at=OLD)
    ids = [f"absent-{unique}-{n}" for n in range(40_000)] + wanted
    async with sessions() as s:
        assert sorted(a.id for a in await fetch_alerts(s, ids)) == wanted


def _bulk_insert_sql(prefix: str, rule_id: int, count: int) -> str:
    """One transaction's worth of alerts, in one statement."""
    return (
        "INSERT INTO alerts (id, rule_id, entity, stream, episode, status, severity, window_start, "
        "window_end, fired_at, explanation, model_version) "
        f"SELECT '{prefix}' || n, {rule_id}, 'bulk', 'news', t, 'open', 'warning', t, t, t, "
        "'{\"top_terms\": [[\"x\", 1.0]]}', 'v1' "
        f"FROM generate_series(1, {count}) AS n, "
        "LATERAL (SELECT '2027-06-01'::timestamptz + n * interval '1 hour') AS w(t)"
    )


async def test_a_bulk_change_resyncs_the_subscribers_without_fetching_it(
    feed: AlertFeed, sessions: async_sessionmaker[AsyncSession], unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One transaction changes more alerts than a poll sends one by one: every subscriber
    gets a resync and none of them is fetched (their explanations stay in the database).
    While an older transaction is still open the next polls read those rows again: they
    are known, not a second resync, and a later change is sent as usual."""
    fetched: list[int] = []

    async def counting_fetch(session: AsyncSession, ids: list[str]) -> list[AlertOut]:
        fetched.append(len(ids))
        return await fetch_alerts(session, ids)

    monkeypatch.setattr(alert_feed, "fetch_alerts", counting_fetch)
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    prefix = f"bulk-{unique}-"
    async with feed.subscribe() as q1, feed.subscribe() as q2, sessions() as old:
        await old.begin()
        await old.execute(select(func.pg_current_xact_id()))  # holds the cluster's xmin back
        await _sql(sessions, _bulk_insert_sql(prefix, rule_id, POLL_MAX_ALERTS + 1))
        assert await feed.poll_once() == []
        assert [q1.get_nowait(), q2.get_nowait()] == [Resync.TOO_MANY_CHANGES] * 2
        assert q1.empty() and q2.empty() and feed.subscribers == 0 and fetched == []

        async with feed.subscribe() as q3:
            await _sql(sessions, f"UPDATE alerts SET status = 'resolved' WHERE id = '{prefix}7'")
            assert _sent(await feed.poll_once()) == [(f"{prefix}7", "resolved")]
            assert q3.get_nowait().id == f"{prefix}7" and fetched == [1]
        await old.rollback()
