"""The offline script (``alembic upgrade --sql``, the README's way for a DBA to review and
apply a migration) on real PostgreSQL, applied with ``psql``: it builds the schema and
seeds ``tonewatch migrate`` builds, and it waits for a migration that is running (the
migration lock). Before, the script could not be written at all (the seeded rules' JSONB
had no literal form) and took no lock."""

from __future__ import annotations

import asyncio
import glob
import io
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from tw_testing import fresh_database

from shared.config import PostgresSettings
from shared.db.migrate import MIGRATION_LOCK, alembic_config, heads

pytestmark = pytest.mark.integration
# Each test applies the script to a new database of its own: the `scratch` fixture (conftest.py).


def _script(settings: PostgresSettings) -> str:
    cfg = alembic_config(settings)
    cfg.output_buffer = io.StringIO()
    command.upgrade(cfg, "head", sql=True)
    return str(cfg.output_buffer.getvalue())


def _psql() -> str:
    found = shutil.which("psql") or max(glob.glob("/usr/lib/postgresql/*/bin/psql"), default=None)
    assert found, "psql (the PostgreSQL client) is installed with the server"
    return found


def _apply(url: str, script: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [_psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def _fetch(url: str, sql: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return sorted(tuple(r) for r in await conn.fetch(sql))
    finally:
        await conn.close()


SCHEMA = {
    "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
    "FROM information_schema.columns WHERE table_schema = 'public'",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE connamespace = 'public'::regnamespace",
    "version": "SELECT version_num FROM alembic_version",
    "rules": "SELECT name, stream, scope::text, channels::text, enabled FROM alert_rules",
    "routes": "SELECT intent, queue FROM routing_rules",
}


def _schema(url: str) -> dict[str, list[tuple[Any, ...]]]:
    return {name: asyncio.run(_fetch(url, sql)) for name, sql in SCHEMA.items()}


def _asyncpg_url(settings: PostgresSettings) -> str:
    return settings.url.get_secret_value().replace("postgresql+asyncpg://", "postgresql://")


def test_the_offline_script_builds_what_tonewatch_migrate_builds(scratch: Any, tmp_path: Path) -> None:
    script = tmp_path / "upgrade.sql"
    script.write_text(_script(scratch.settings))
    text = script.read_text()
    assert text.lstrip().startswith(f"SELECT pg_advisory_lock({MIGRATION_LOCK});")
    assert text.rstrip().endswith(f"SELECT pg_advisory_unlock({MIGRATION_LOCK});")
    psql = _apply(scratch.url, script)
    out, _ = psql.communicate(timeout=120)
    assert psql.returncode == 0, out
    offline = _schema(scratch.url)
    with fresh_database() as online:  # `tonewatch migrate`'s way
        expected = _schema(_asyncpg_url(online))
    assert offline["version"] == [(h,) for h in heads()]
    assert offline["rules"] and offline["routes"]
    for name in SCHEMA:
        assert offline[name] == expected[name], name


def test_the_offline_script_waits_for_a_running_migration(scratch: Any, tmp_path: Path) -> None:
    """The migration lock is held (another migration runs): the script waits, having
    changed nothing, and goes on once it is released."""
    script = tmp_path / "upgrade.sql"
    script.write_text(_script(scratch.settings))

    async def scenario() -> tuple[int | None, list[str], int | None, str]:
        holder = await asyncpg.connect(scratch.url)
        try:
            await holder.execute(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
            psql = _apply(scratch.url, script)
            await asyncio.sleep(3)
            waiting = psql.poll()
            tables = [
                r["tablename"]
                for r in await holder.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ]
            await holder.execute(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
            deadline = time.monotonic() + 120
            while psql.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            if psql.poll() is None:
                psql.kill()
            out, _ = psql.communicate()
            return waiting, tables, psql.returncode, out
        finally:
            await holder.close()

    waiting, tables, code, out = asyncio.run(scenario())
    assert waiting is None, "the script did not wait for the lock"
    assert tables == []
    assert code == 0, out
    assert _schema(scratch.url)["version"] == [(h,) for h in heads()]
