"""The periodic scans (the aggregator's retention pass, the alerter's sweep, the live
alert feed's poll) can use an index: the statements the code itself sends are captured
and EXPLAINed on the real, migrated database with sequential scans priced out, so only
a missing index leaves one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event

from services.aggregator.persist import expire
from services.alerter.app import recent_keys
from services.api.alert_feed import read_changes
from shared.config import PostgresSettings
from shared.db.session import make_engine, make_sessionmaker

pytestmark = pytest.mark.integration


async def _plans(pg_settings: PostgresSettings, run: Any) -> dict[str, str]:
    """{statement: its plan} for every statement ``run(sessions)`` sends."""
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
    try:
        await conn.execute("SET enable_seqscan = off")
        plans = {}
        for statement, parameters in sent:
            rows = await conn.fetch(f"EXPLAIN {statement}", *parameters)
            plans[statement] = "\n".join(r[0] for r in rows)
        return plans
    finally:
        await conn.close()


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
