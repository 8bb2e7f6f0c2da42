"""Migration 0010 on real PostgreSQL, while another session writes to the trend tables:
its indexes are built CONCURRENTLY (a plain CREATE INDEX queued a SHARE lock on
trend_minute behind the aggregator's open transaction, and every later insert queued
behind it for the whole build), and a build that failed half-way is repaired by running
the migration again (a failed CONCURRENTLY build leaves an INVALID index)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import pytest

from shared.config import PostgresSettings
from shared.db.migrate import upgrade

pytestmark = pytest.mark.integration

INDEXES = (
    "ix_trend_minute_stream_bucket",
    "ix_trend_hour_stream_bucket",
    "ix_alerts_fired_at_id",
    "ix_alerts_unresolved",
)
INSERT = (
    "INSERT INTO trend_minute (stream, entity, bucket, model_version, count, negative, neutral, positive, "
    "score_sum, confidence_sum) VALUES ('news', $1, timestamptz '2027-01-01', 'v1', 1, 0, 1, 0, 0, 1)"
)


@pytest.fixture
def scratch(scratch: tuple[PostgresSettings, str]) -> tuple[PostgresSettings, str]:
    """The scratch database (conftest.py) at revision 0009, and its asyncpg URL."""
    settings, _ = scratch
    upgrade(settings, "0009")
    return scratch


async def _waiting_build(conn: asyncpg.Connection) -> int:
    """The pid of the migration's backend once its build of the trend_minute index waits
    for a lock (the open transaction that inserted into trend_minute)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pid = await conn.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND query ILIKE 'CREATE INDEX%ix_trend_minute_stream_bucket%'"
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.05)
    raise AssertionError("the migration never started building ix_trend_minute_stream_bucket")


async def _validity(conn: asyncpg.Connection) -> dict[str, bool]:
    rows = await conn.fetch(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = ANY($1::text[])",
        list(INDEXES),
    )
    return {r["relname"]: r["indisvalid"] for r in rows}


async def _finish(migration: asyncio.Future[None]) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(migration, 60)


async def test_0010_builds_its_indexes_while_other_sessions_keep_inserting_into_trend_minute(
    scratch: tuple[PostgresSettings, str],
) -> None:
    settings, url = scratch
    holder, writer = await asyncpg.connect(url), await asyncpg.connect(url)
    held = holder.transaction()
    await held.start()
    open_ = True
    migration: asyncio.Future[None] | None = None
    try:
        await holder.execute(INSERT, "held-1")  # the aggregator's transaction, open across the start
        migration = asyncio.ensure_future(asyncio.to_thread(upgrade, settings, "0010"))
        pid = await _waiting_build(writer)

        await writer.execute("SET lock_timeout = '5s'")  # a plain CREATE INDEX: queued behind its SHARE lock
        for i in range(3):
            await writer.execute(INSERT, f"writer-{i}")
        await holder.execute(INSERT, "held-2")
        modes = await writer.fetch(
            "SELECT mode FROM pg_locks WHERE pid = $1 AND relation = 'trend_minute'::regclass", pid
        )
        assert "ShareLock" not in {m["mode"] for m in modes}

        await held.commit()  # the build goes on once the transactions before it are done
        open_ = False
        await asyncio.wait_for(migration, 60)
        assert await writer.fetchval("SELECT version_num FROM alembic_version") == "0010"
        assert await _validity(writer) == dict.fromkeys(INDEXES, True)
        assert await writer.fetchval("SELECT count(*) FROM trend_minute") == 5
    finally:
        if open_:  # a failure above: let the migration finish before the database goes
            await held.rollback()
        if migration is not None:
            await _finish(migration)
        await holder.close()
        await writer.close()


async def test_rerunning_0010_after_a_failed_build_replaces_the_invalid_index_it_left(
    scratch: tuple[PostgresSettings, str],
) -> None:
    settings, url = scratch
    holder, admin = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        async with holder.transaction():
            await holder.execute(INSERT, "held")
            migration = asyncio.ensure_future(asyncio.to_thread(upgrade, settings, "0010"))
            await admin.execute("SELECT pg_cancel_backend($1)", await _waiting_build(admin))  # an operator's ^C
            with pytest.raises(Exception, match="canceling statement"):
                await asyncio.wait_for(migration, 60)
        assert await admin.fetchval("SELECT version_num FROM alembic_version") == "0009"
        assert await _validity(admin) == {"ix_trend_minute_stream_bucket": False}  # what the build left

        await asyncio.to_thread(upgrade, settings, "0010")
        assert await admin.fetchval("SELECT version_num FROM alembic_version") == "0010"
        assert await _validity(admin) == dict.fromkeys(INDEXES, True)
        definition = await admin.fetchval("SELECT pg_get_indexdef('ix_trend_minute_stream_bucket'::regclass)")
        assert definition.endswith("ON public.trend_minute USING btree (stream, bucket)")
    finally:
        await holder.close()
        await admin.close()
