"""Alembic upgrade, downgrade, upgrade on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from pydantic import SecretStr

from shared.config import PostgresSettings
from shared.db.migrate import downgrade, upgrade

pytestmark = pytest.mark.integration
ADMIN = "postgresql://tonewatch:tonewatch@127.0.0.1:15432/tonewatch"


async def _exec(sql: str, db: str = "tonewatch") -> list[asyncpg.Record]:
    conn = await asyncpg.connect(ADMIN.rsplit("/", 1)[0] + "/" + db)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def _drift(settings: PostgresSettings) -> list[object]:
    """What Alembic's autogenerate would still change: models vs the migrated schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.db.models import Base

    engine = create_async_engine(settings.url.get_secret_value())
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
    finally:
        await engine.dispose()


def _tables(db: str) -> set[str]:
    rows = asyncio.run(_exec("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", db))
    return {r["tablename"] for r in rows}


def test_upgrade_downgrade_upgrade() -> None:
    name = f"tw_mig_{uuid.uuid4().hex[:8]}"
    asyncio.run(_exec(f'CREATE DATABASE "{name}"'))
    settings = PostgresSettings(url=SecretStr(f"postgresql+asyncpg://tonewatch:tonewatch@127.0.0.1:15432/{name}"))
    try:
        upgrade(settings)
        tables = _tables(name)
        assert {
            "entities",
            "trend_minute",
            "trend_hour",
            "scored_events",
            "counted_events",
            "alerts",
            "alert_rules",
            "routing_rules",
            "api_keys",
        } <= tables
        rules = asyncio.run(_exec("SELECT count(*) AS n FROM routing_rules", name))
        assert rules[0]["n"] == 21
        assert asyncio.run(_drift(settings)) == []  # the migrations build exactly what the models declare
        downgrade(settings, "base")
        assert _tables(name) == {"alembic_version"}
        upgrade(settings)
        assert tables == _tables(name)
    finally:
        asyncio.run(_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
