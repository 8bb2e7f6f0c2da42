"""0012: ``entities.watched_since`` and ``entities.group_since``, on real PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from shared.config import PostgresSettings
from shared.db.migrate import downgrade, upgrade

pytestmark = pytest.mark.integration


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def test_0012_gives_existing_entities_their_created_at_and_downgrades(scratch: Any) -> None:
    """Entities on the watchlist before the upgrade are watched, and in their group, since
    they were created; the downgrade drops both columns and keeps the rows."""
    settings: PostgresSettings = scratch.settings
    url: str = scratch.url

    def columns() -> set[str]:
        rows = asyncio.run(
            _fetch(url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'entities'")
        )
        return {r["column_name"] for r in rows} & {"watched_since", "group_since"}

    upgrade(settings, "0011")
    asyncio.run(
        _fetch(
            url,
            "INSERT INTO entities (key, name, aliases, case_sensitive_aliases, tickers, grp, created_at) VALUES "
            "('old', 'Old', '[]', '[]', '[]', 'g', '2025-01-02T03:04:05Z')",
        )
    )
    assert columns() == set()

    upgrade(settings)
    (row,) = asyncio.run(_fetch(url, "SELECT created_at, watched_since, group_since FROM entities"))
    assert row["watched_since"] == row["created_at"] == row["group_since"]
    asyncio.run(
        _fetch(
            url,
            "INSERT INTO entities (key, name, aliases, case_sensitive_aliases, tickers) "
            "VALUES ('new', 'New', '[]', '[]', '[]')",
        )
    )
    new = asyncio.run(_fetch(url, "SELECT watched_since, group_since FROM entities WHERE key = 'new'"))
    assert new[0]["watched_since"] is not None and new[0]["group_since"] is not None  # defaulted

    downgrade(settings, "0011")
    assert columns() == set()
    assert {r["key"] for r in asyncio.run(_fetch(url, "SELECT key FROM entities"))} == {"old", "new"}
    upgrade(settings)
    assert columns() == {"watched_since", "group_since"}
