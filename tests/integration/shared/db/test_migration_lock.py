"""Concurrent ``tonewatch migrate`` runs on real PostgreSQL: the second waits for the
first's migration lock, then finds the database at head and does nothing; one that cannot
have the lock in time fails naming who holds it; a service starting while a migration runs
waits for it rather than refuse the revision being replaced.

Without the lock both runs read "not migrated" and ran the same DDL: the first's CREATE
TABLE alembic_version waited for the session below, and so did the second's; once it ended
one run created the table and the other failed on the duplicate."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from shared.config import PostgresSettings
from shared.db.migrate import MIGRATION_LOCK, MigrationLocked, database_revision, heads, upgrade

pytestmark = pytest.mark.integration

WAITING_FOR_THE_LOCK = "another migration is running"
# Each test has its own new, unmigrated database: the `scratch` fixture (conftest.py).


async def _blocked_on_version_table(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND query ILIKE '%CREATE TABLE alembic_version%'"
        )
    )


async def test_two_concurrent_migrate_commands_run_one_after_the_other_and_both_succeed(
    scratch: tuple[PostgresSettings, str], tmp_path: Path
) -> None:
    settings, url = scratch
    env = {**os.environ, "TW_POSTGRES__URL": settings.url.get_secret_value()}
    holder, watcher = await asyncpg.connect(url), await asyncpg.connect(url)
    held = holder.transaction()
    await held.start()
    open_ = True
    runs: list[asyncio.subprocess.Process] = []
    logs = [tmp_path / f"migrate-{i}.log" for i in range(2)]
    try:
        # An uncommitted alembic_version: each run that has read "not migrated" waits on it in its
        # CREATE TABLE alembic_version, so both runs are past that read before either goes on.
        await holder.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        for log in logs:  # two `tonewatch migrate` (two containers, an operator and a deploy job)
            with log.open("wb") as out:
                runs.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "services", "migrate", env=env, stdout=out, stderr=subprocess.STDOUT
                    )
                )
        deadline = time.monotonic() + 60
        while True:  # both runs blocked on the table (no lock), or one there and the other waiting for it
            blocked = await _blocked_on_version_table(watcher)
            waiting = any(WAITING_FOR_THE_LOCK in log.read_text() for log in logs)
            if blocked == 2 or (blocked == 1 and waiting):
                break
            assert all(r.returncode is None for r in runs), [log.read_text() for log in logs]
            assert time.monotonic() < deadline, "the runs never reached alembic_version"
            await asyncio.sleep(0.05)

        await held.rollback()
        open_ = False
        codes = [await asyncio.wait_for(r.wait(), 120) for r in runs]
        assert codes == [0, 0], [log.read_text() for log in logs]
        assert await watcher.fetch("SELECT version_num FROM alembic_version") == [(heads()[0],)]
        assert await watcher.fetchval("SELECT count(*) FROM routing_rules") == 21  # the seed ran once
        locks = await watcher.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert locks == 0  # released by both
    finally:
        if open_:
            await held.rollback()
        for run in runs:
            if run.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    run.kill()
                await run.wait()
        await holder.close()
        await watcher.close()


async def test_a_migration_that_cannot_have_the_lock_in_time_fails_naming_who_holds_it(
    scratch: tuple[PostgresSettings, str],
) -> None:
    settings, url = scratch
    other = await asyncpg.connect(url, server_settings={"application_name": "deploy-job"})
    try:
        await other.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        pid = other.get_server_pid()
        with pytest.raises(MigrationLocked, match=rf"another migration holds the migration lock \(pid {pid}, "):
            await asyncio.to_thread(upgrade, settings, lock_timeout_s=0)
        with pytest.raises(MigrationLocked, match=r"application 'deploy-job'.* did not finish within 0\.2 s"):
            await asyncio.to_thread(upgrade, settings, lock_timeout_s=0.2)
        assert await other.fetchval("SELECT to_regclass('alembic_version')") is None  # nothing ran

        await other.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        await asyncio.to_thread(upgrade, settings, lock_timeout_s=0)
        assert await other.fetchval("SELECT version_num FROM alembic_version") == heads()[0]
    finally:
        await other.close()


async def test_a_failed_migration_releases_the_lock(scratch: tuple[PostgresSettings, str]) -> None:
    settings, url = scratch
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE entities (id int)")  # 0001 creates it: the upgrade fails
        with pytest.raises(Exception, match="already exists"):
            await asyncio.to_thread(upgrade, settings, lock_timeout_s=0)
        assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK)
    finally:
        await conn.close()


async def test_a_service_starting_while_a_migration_runs_waits_for_its_revision(
    scratch: tuple[PostgresSettings, str], caplog: pytest.LogCaptureFixture
) -> None:
    """It read the revision being replaced (or none), logged "run tonewatch migrate" and
    exited 2, restarted by its supervisor until the migration was done."""
    settings, url = scratch
    caplog.set_level(logging.WARNING, logger="tonewatch.migrate")
    migration = await asyncpg.connect(url, server_settings={"application_name": "tonewatch migrate"})
    try:
        await migration.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        read = asyncio.ensure_future(database_revision(settings))
        deadline = time.monotonic() + 30
        while not any("a migration is running" in r.getMessage() for r in caplog.records):
            assert not read.done(), f"read {read.result()!r} while the migration ran"
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert "application 'tonewatch migrate'" in caplog.text

        await migration.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        await migration.execute("INSERT INTO alembic_version VALUES ('0010')")
        await migration.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        assert await asyncio.wait_for(read, 30) == "0010"
    finally:
        await migration.close()


async def test_a_service_whose_schema_is_current_does_not_wait_for_the_lock(
    scratch: tuple[PostgresSettings, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A stuck holder of the lock (a migration waiting on an idle transaction, a hung
    alembic run) made every restart of a service wait the whole wait, though the database
    was already at the revision it needs; now it reads that revision and starts."""
    settings, url = scratch
    await asyncio.to_thread(upgrade, settings)
    (head,) = heads()
    caplog.set_level(logging.WARNING, logger="tonewatch.migrate")
    holder = await asyncpg.connect(url, server_settings={"application_name": "stuck"})
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        assert await asyncio.wait_for(database_revision(settings, wait_s=300, wanted=(head,)), 10) == head
        assert "a migration is running" not in caplog.text
        # another release's service (its heads differ) still waits, within what it is given
        assert await asyncio.wait_for(database_revision(settings, wait_s=0.5, wanted=("9999",)), 10) == head
        assert "a migration is running" in caplog.text
    finally:
        await holder.close()
