"""A database that is not migrated for this release is a misconfiguration: every service
says so and what to run, with exit code 2, at start-up (shared.startup.refuse_unmigrated)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from services_proc import log_tail, start_service, stop

from shared.config import PostgresSettings, ServiceSettings
from shared.db.migrate import alembic_config

pytestmark = pytest.mark.integration


@pytest.fixture
async def empty_database(pg_settings: PostgresSettings) -> AsyncIterator[str]:
    """The URL of a new database on the test server, with no schema."""
    url = pg_settings.url.get_secret_value()
    server, _, _ = url.rpartition("/")
    name = f"tw_unmigrated_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{server}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _previous_revision(pg_settings: PostgresSettings) -> str:
    script = ScriptDirectory.from_config(alembic_config(pg_settings))
    (head,) = script.get_heads()
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)
    return previous


@pytest.mark.parametrize("service", ["classifier", "aggregator", "router", "alerter", "api"])
@pytest.mark.parametrize("stale", [False, True], ids=["never-migrated", "previous-revision"])
async def test_a_database_not_migrated_for_this_release_stops_a_service_at_start_up(
    service_settings: Callable[..., Any],
    pg_settings: PostgresSettings,
    tiny_models: Path,
    tmp_path: Path,
    unique: str,
    empty_database: str,
    stale: bool,
    service: str,
) -> None:
    """The classifier's agent crashed on the missing entities table every 5 s while the
    process stayed up consuming nothing (and exited 0 on SIGTERM); the aggregator and
    router took the failing query for an outage and retried it for ever."""
    settings: ServiceSettings = service_settings(ServiceSettings)
    expected = "not migrated"
    if stale:
        previous = _previous_revision(pg_settings)
        conn = await asyncpg.connect(empty_database.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
            await conn.execute("INSERT INTO alembic_version VALUES ($1)", previous)
        finally:
            await conn.close()
        expected = f"at revision {previous}"
    env = {
        "TW_MODELS_DIR": str(tiny_models),
        "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}",
        "TW_POSTGRES__URL": empty_database,
    }
    proc = start_service(service, settings, tmp_path, **env)
    try:
        code = await asyncio.to_thread(proc.wait, 60)
    finally:
        stop(proc)
    log = log_tail(tmp_path, service, 100_000)
    assert code == 2, log[-3000:]
    assert f"{service} cannot start: the database is {expected}" in log and "run tonewatch migrate" in log
