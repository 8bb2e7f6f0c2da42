"""Migration 0009 on real PostgreSQL: the router's ledger rows from before it count as
sent; a downgrade drops the rows not yet sent (the old router would skip those chats)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from pydantic import SecretStr

from shared.config import PostgresSettings
from shared.db.migrate import downgrade, upgrade

pytestmark = pytest.mark.integration
ADMIN = "postgresql://tonewatch:tonewatch@127.0.0.1:15432"


def _exec(sql: str, db: str = "tonewatch") -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(f"{ADMIN}/{db}")
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def test_0009_keeps_old_ledger_rows_as_sent_and_its_downgrade_drops_unsent_ones() -> None:
    name = f"tw_mig_{uuid.uuid4().hex[:8]}"
    _exec(f'CREATE DATABASE "{name}"')
    settings = PostgresSettings(url=SecretStr(f"postgresql+asyncpg://tonewatch:tonewatch@127.0.0.1:15432/{name}"))
    try:
        upgrade(settings, "0008")
        _exec("INSERT INTO routed_events (id, queue) VALUES ('old', 'cards')", name)
        upgrade(settings, "0009")
        rows = _exec("SELECT id, queue, priority, reason, sent_at IS NOT NULL AS sent FROM routed_events", name)
        assert [tuple(r) for r in rows] == [("old", "cards", None, None, True)]
        _exec(
            "INSERT INTO routed_events (id, queue, priority, reason) VALUES ('unsent', 'access', false, 'intent x')",
            name,
        )
        new = _exec("SELECT sent_at FROM routed_events WHERE id = 'unsent'", name)
        assert new[0]["sent_at"] is None  # no default: a new row is not sent until marked
        downgrade(settings, "0008")
        assert [tuple(r) for r in _exec("SELECT id, queue FROM routed_events", name)] == [("old", "cards")]
        upgrade(settings)
    finally:
        _exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
