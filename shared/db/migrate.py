"""Run Alembic programmatically (``tonewatch migrate``).

One migration at a time per database: ``migrations/env.py`` holds a session-level
advisory lock (:data:`MIGRATION_LOCK`) on the connection it migrates with, from before it
reads the database's revision until the upgrade or downgrade ends (failed or not). A second
``tonewatch migrate`` (another container, an operator beside a deploy job) waits for it,
then finds the database at its target and does nothing; past ``lock_timeout_s`` it fails
with :class:`MigrationLocked`, naming the session that holds the lock. The lock is polled
(``pg_try_advisory_lock``) rather than waited for: a session blocked in
``pg_advisory_lock`` keeps a snapshot, which 0010's ``CREATE INDEX CONCURRENTLY`` in the
running migration waits for, a deadlock PostgreSQL resolves by cancelling one of them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from shared.config import PostgresSettings

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.engine import Connection

log = logging.getLogger("tonewatch.migrate")

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATION_LOCK = 7_420_002  # advisory lock key, unique within the database (the alerter's outbox: 7_420_001)
LOCK_TIMEOUT_S = 300.0  # how long a migration, or a service starting, waits for a running migration
LOCK_POLL_S = 0.5
APPLICATION_NAME = "tonewatch migrate"  # the migration's session in pg_stat_activity
# Who holds the migration lock in this database: pg_locks splits a bigint key into classid (high 32
# bits) and objid (low 32 bits), objsubid 1.
_HOLDER = (
    "SELECT l.pid, a.application_name, host(a.client_addr) AS client, a.backend_start "
    "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    f"AND (l.classid::bigint << 32) | l.objid::bigint = {MIGRATION_LOCK} LIMIT 1"
)


class MigrationLocked(RuntimeError):
    """Another migration held the lock for longer than this one would wait."""


def _describe(row: Any) -> str:
    """``pid 123, application 'tonewatch migrate', from 10.0.0.5, connected 2027-01-01 ...``."""
    if row is None:
        return "a session that has just released it"
    pid, app, client, started = row[0], row[1], row[2], row[3]
    parts = [f"pid {pid}"]
    if app:
        parts.append(f"application {app!r}")
    if client:
        parts.append(f"from {client}")
    if started is not None:
        parts.append(f"connected {started:%Y-%m-%d %H:%M:%S %Z}".rstrip())
    return ", ".join(parts)


def hold_migration_lock(connection: Connection, timeout_s: float = LOCK_TIMEOUT_S) -> None:
    """Take the migration lock on ``connection`` (session level: it outlives the
    transactions, and Alembic's autocommit blocks), waiting up to ``timeout_s`` for another
    migration to finish; :class:`MigrationLocked` after that. Leaves no transaction open."""
    from sqlalchemy import text

    deadline = time.monotonic() + max(timeout_s, 0.0)
    waited = False
    while True:
        taken = connection.scalar(text(f"SELECT pg_try_advisory_lock({MIGRATION_LOCK})"))
        holder = None if taken else _describe(connection.execute(text(_HOLDER)).first())
        connection.commit()  # no snapshot kept between tries (see the module's docstring)
        if taken:
            if waited:
                log.info("the other migration is done; migrating")
            return
        if time.monotonic() >= deadline:
            raise MigrationLocked(
                f"another migration holds the migration lock ({holder}) and did not finish within "
                f"{timeout_s:g} s; wait for it, or end that session if it is stuck"
            )
        if not waited:
            log.warning("another migration is running (%s): waiting up to %g s for it to finish", holder, timeout_s)
            waited = True
        time.sleep(min(LOCK_POLL_S, max(deadline - time.monotonic(), 0.0)))


def release_migration_lock(connection: Connection) -> None:
    """Release the lock taken by :func:`hold_migration_lock`; where the connection cannot
    run that (broken), close it instead: the session's end releases it."""
    from sqlalchemy import text

    try:
        if connection.in_transaction():
            connection.rollback()
        connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        connection.commit()
    except Exception:  # never hide the migration's own error
        log.warning("could not release the migration lock; closing its connection instead", exc_info=True)
        connection.invalidate()


def alembic_config(settings: PostgresSettings, *, lock_timeout_s: float = LOCK_TIMEOUT_S) -> Config:
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.attributes["url"] = settings.url.get_secret_value()
    cfg.attributes["lock_timeout_s"] = lock_timeout_s
    return cfg


def upgrade(settings: PostgresSettings, revision: str = "head", *, lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
    command.upgrade(alembic_config(settings, lock_timeout_s=lock_timeout_s), revision)


def downgrade(settings: PostgresSettings, revision: str, *, lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
    command.downgrade(alembic_config(settings, lock_timeout_s=lock_timeout_s), revision)


def heads() -> tuple[str, ...]:
    """The migration heads this release's code needs."""
    return tuple(ScriptDirectory(str(REPO_ROOT / "migrations")).get_heads())


async def _wait_for_migration(conn: asyncpg.Connection, wait_s: float) -> None:
    """Return once no migration holds the lock, or after ``wait_s`` (logged)."""
    deadline = time.monotonic() + max(wait_s, 0.0)
    waited = False
    while (row := await conn.fetchrow(_HOLDER)) is not None:
        if time.monotonic() >= deadline:
            log.warning("the migration (%s) still runs after %g s; reading the revision anyway", _describe(row), wait_s)
            return
        if not waited:
            log.warning("a migration is running (%s): waiting up to %g s for it to finish", _describe(row), wait_s)
            waited = True
        await asyncio.sleep(min(LOCK_POLL_S, max(deadline - time.monotonic(), 0.0)))
    if waited:
        log.info("the migration is done")


async def database_revision(
    settings: PostgresSettings, *, wait_s: float = LOCK_TIMEOUT_S, wanted: Sequence[str] | None = None
) -> str | None:
    """The database's Alembic revision; None when it was never migrated. While a migration
    runs (a service started beside ``tonewatch migrate``) it waits, up to ``wait_s``, for
    the revision that migration leaves, rather than refuse the one it is replacing; not
    when the database is already at a revision in ``wanted`` (this release's heads): a
    service whose schema is there starts at once, whatever else holds the lock."""
    import asyncpg

    url = settings.url.get_secret_value().replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url, timeout=5)

    async def read() -> str | None:
        try:
            revision = await conn.fetchval("SELECT version_num FROM alembic_version")
        except asyncpg.UndefinedTableError:
            return None
        return str(revision) if revision is not None else None

    try:
        if wanted is not None and (revision := await read()) in wanted:
            return revision
        await _wait_for_migration(conn, wait_s)
        return await read()
    finally:
        await conn.close()


def schema_refusal(revision: str | None, needed: Sequence[str]) -> str | None:
    """Why a database at ``revision`` cannot serve this release, or None. A service on an
    unmigrated database failed on its first query, and some retried that for ever: a
    misconfiguration to report at start-up, not to retry."""
    if revision in needed:
        return None
    found = f"at revision {revision}" if revision else "not migrated"
    return f"the database is {found} (this release needs {', '.join(needed)}): run tonewatch migrate"
