"""The periodic scans (the aggregator's retention pass, the alerter's sweep, the live
alert feed's poll) and the dashboard's reads (latest bucket, watchlist, alert list) can
use an index: the statements the code itself sends are captured and EXPLAINed on the
real, migrated database with sequential scans priced out, so only a missing index leaves
one. The dashboard's reads are also planned as generic plans (a prepared statement's,
whatever its parameters), the plans PostgreSQL may keep for a statement run often."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import asyncpg
import pytest
from sqlalchemy import event, tuple_

from services.aggregator.persist import expire
from services.alerter.app import recent_keys
from services.api.alert_feed import alerts_query, read_changes
from services.api.deps import Deps
from services.api.query import Granularity, Window, latest_trend_bucket
from services.api.routes_entities import _series, open_alert_counts
from shared.config import PostgresSettings
from shared.db.models import Alert
from shared.db.session import make_engine, make_sessionmaker

pytestmark = pytest.mark.integration


# Enough history for the planner to choose as on a full database (on empty tables every
# index costs the same): 24,000 minute and hour buckets, 6,000 alerts of which 60 open.
HISTORY = """
INSERT INTO trend_minute (stream, entity, bucket, model_version, count, negative, neutral, positive,
                          score_sum, confidence_sum)
SELECT s, 'e' || e, timestamptz '2026-12-31' + m * interval '1 minute', 'v1', 10, 2, 5, 3, 1.0, 8.0
FROM unnest(ARRAY['news', 'chat']) s, generate_series(1, 20) e, generate_series(0, 599) m;
INSERT INTO trend_hour (stream, entity, bucket, model_version, count, negative, neutral, positive,
                        score_sum, confidence_sum)
SELECT stream, entity, bucket - timestamptz '2026-12-31' + timestamptz '2026-12-06', model_version, count,
       negative, neutral, positive, score_sum, confidence_sum
FROM trend_minute WHERE entity LIKE 'e%';
INSERT INTO alert_rules (name, stream, scope, window_s, min_volume, abs_threshold, z_threshold, baseline,
                         severity, cooldown_s, resolve_after_s, channels)
VALUES ('index-history', 'news', '{}', 300, 10, 0.5, 3, 'ewma', 'warning', 600, 900, '[]');
INSERT INTO alerts (id, rule_id, entity, stream, episode, status, severity, window_start, window_end, fired_at,
                    explanation, model_version)
SELECT 'history-' || i, (SELECT id FROM alert_rules WHERE name = 'index-history'), 'e' || i % 20,
       (ARRAY['news', 'chat'])[1 + i % 2], timestamptz '2026-01-01' + i * interval '1 hour',
       CASE WHEN i % 100 = 0 THEN 'open' ELSE 'resolved' END, 'warning', timestamptz '2026-01-01',
       timestamptz '2026-01-01', timestamptz '2026-01-01' + i * interval '1 hour', '{}', 'v1'
FROM generate_series(1, 6000) i;
ANALYZE trend_minute, trend_hour, alerts, alert_rules;
"""


async def _plans(
    pg_settings: PostgresSettings, run: Any, *, generic: bool = False, history: bool = False
) -> dict[str, str]:
    """{statement: its plan} for every statement ``run(sessions)`` sends; ``generic``: the
    plan made without the parameters' values; ``history``: planned with :data:`HISTORY`
    in the tables (rolled back after)."""
    engine = make_engine(pg_settings)
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "DELETE")) and "FROM" in statement.upper():
            sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await run(make_sessionmaker(engine))
    finally:
        await engine.dispose()
    url = pg_settings.url.get_secret_value().replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    transaction = conn.transaction()
    await transaction.start()
    try:
        if history:
            await conn.execute(HISTORY)
        await conn.execute("SET LOCAL enable_seqscan = off")
        plans = {}
        for statement, parameters in sent:
            rows = await (
                _generic_plan(conn, statement, len(parameters)) if generic else _plan(conn, statement, parameters)
            )
            plans[statement] = "\n".join(r[0] for r in rows)
        return plans
    finally:
        await transaction.rollback()
        await conn.close()


async def _plan(conn: asyncpg.Connection, statement: str, parameters: Any) -> list[asyncpg.Record]:
    return await conn.fetch(f"EXPLAIN {statement}", *parameters)


async def _generic_plan(conn: asyncpg.Connection, statement: str, n_parameters: int) -> list[asyncpg.Record]:
    await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    await conn.execute(f"PREPARE tw_planned AS {statement}")
    arguments = f"({', '.join(['NULL'] * n_parameters)})" if n_parameters else ""
    try:
        return await conn.fetch(f"EXPLAIN EXECUTE tw_planned{arguments}")
    finally:
        await conn.execute("DEALLOCATE tw_planned")


async def test_the_retention_pass_deletes_through_indexes(pg_settings: PostgresSettings) -> None:
    plans = await _plans(pg_settings, lambda s: expire(s, scored_days=7, ledger_days=30))
    deletes = {k: v for k, v in plans.items() if k.lstrip().upper().startswith("DELETE")}
    assert len(deletes) == 2, plans
    for plan in deletes.values():
        assert "Seq Scan" not in plan, plan
    joined = "\n".join(deletes.values())
    assert "ix_counted_events_counted_at" in joined and "ix_scored_events_created_at" in joined, joined


async def test_the_alerter_sweep_finds_recent_keys_through_an_index(pg_settings: PostgresSettings) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    plans = await _plans(pg_settings, lambda s: recent_keys(s, since))
    (plan,) = plans.values()
    assert "Seq Scan" not in plan and "ix_trend_hour_updated_at" in plan, plan


async def test_the_alert_feed_reads_changes_through_an_index(pg_settings: PostgresSettings) -> None:
    async def poll(sessions: Any) -> None:
        async with sessions() as session, session.begin():
            await read_changes(session, None, {}, fetch=False)

    plans = await _plans(pg_settings, poll)
    (plan,) = plans.values()  # the markers (the xmin has no FROM)
    assert "Seq Scan" not in plan and "ix_alerts_changed_xid" in plan, plan


def _scan_using(plan: str, index: str) -> bool:
    """The plan reads through ``index``: an index (only) scan, forwards or backwards, or a
    bitmap index scan (which the planner picks for a few dozen rows of a partial index)."""
    return any(f"{how} {index}" in plan for how in ("Scan using", "Scan Backward using", "Bitmap Index Scan on"))


@pytest.mark.parametrize("generic", [False, True])
@pytest.mark.parametrize("granularity", ["minute", "hour"])
async def test_the_latest_trend_bucket_is_read_from_the_end_of_an_index_stream_by_stream(
    pg_settings: PostgresSettings, granularity: Granularity, generic: bool
) -> None:
    """Of all streams too: a scan of a bucket index that filters a stream would walk
    through the other stream's newer buckets when one stream was replayed from history."""
    index = f"ix_trend_{granularity}_stream_bucket"
    for stream, n_streams in ((None, 2), ("chat", 1)):

        async def latest(sessions: Any, stream: str | None = stream) -> None:
            async with sessions() as session:
                await latest_trend_bucket(session, stream, granularity)

        (plan,) = (await _plans(pg_settings, latest, generic=generic, history=True)).values()
        assert "Seq Scan" not in plan and plan.count("Limit") == n_streams, plan
        assert plan.count(f"Scan Backward using {index} on") == n_streams, plan


@pytest.mark.parametrize("generic", [False, True])
@pytest.mark.parametrize("granularity", ["minute", "hour"])
async def test_the_watchlist_reads_its_window_of_buckets_through_an_index(
    pg_settings: PostgresSettings, granularity: Granularity, generic: bool
) -> None:
    end = datetime(2027, 1, 1, tzinfo=UTC)
    window = Window(end - timedelta(hours=2), end, granularity)
    for stream in (None, "news"):

        async def series(sessions: Any, stream: Any = stream) -> None:
            await _series(cast(Deps, SimpleNamespace(sessions=sessions)), stream, window)

        (plan,) = (await _plans(pg_settings, series, generic=generic, history=True)).values()
        assert "Seq Scan" not in plan and _scan_using(plan, f"ix_trend_{granularity}_stream_bucket"), plan
        conditions = [line for line in plan.splitlines() if "Index Cond:" in line]
        assert any("stream" in line and "bucket >=" in line for line in conditions), plan


@pytest.mark.parametrize("generic", [False, True])
async def test_the_watchlist_counts_open_alerts_through_the_partial_index(
    pg_settings: PostgresSettings, generic: bool
) -> None:
    for stream in (None, "chat"):

        async def counts(sessions: Any, stream: Any = stream) -> None:
            async with sessions() as session:
                await open_alert_counts(session, stream)

        (plan,) = (await _plans(pg_settings, counts, generic=generic, history=True)).values()
        assert "Seq Scan" not in plan and _scan_using(plan, "ix_alerts_unresolved"), plan


@pytest.mark.parametrize("generic", [False, True])
async def test_the_alert_list_and_its_keyset_pages_read_the_newest_alerts_through_an_index(
    pg_settings: PostgresSettings, generic: bool
) -> None:
    """The forms the alert list and the live feed's snapshot send: newest first (``id``
    either way as the tie-break) and the page after an alert, ``(fired_at, id) < (...)``."""
    after = tuple_(Alert.fired_at, Alert.id) < tuple_(datetime(2027, 1, 1, tzinfo=UTC), "a1")
    statements = [
        alerts_query().order_by(Alert.fired_at.desc(), Alert.id).limit(100),
        alerts_query().order_by(Alert.fired_at.desc(), Alert.id.desc()).limit(50),
        alerts_query().where(after).order_by(Alert.fired_at.desc(), Alert.id.desc()).limit(100),
    ]

    async def newest(sessions: Any) -> None:
        async with sessions() as session:
            for stmt in statements:
                await session.execute(stmt)

    plans = list((await _plans(pg_settings, newest, generic=generic, history=True)).values())
    assert len(plans) == 3, plans
    for plan in plans:
        assert "Seq Scan on alerts" not in plan and _scan_using(plan, "ix_alerts_fired_at_id"), plan
        assert "Limit" in plan.splitlines()[0], plan
    assert "Index Cond: (ROW(" in plans[2], plans[2]  # the page starts in the index
