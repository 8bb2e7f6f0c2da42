"""0015: ``webhook_deliveries.format`` and ``alerts.notify_claim``, on real PostgreSQL: the
rows already logged (and those an alerter of the previous version writes during a rolling
upgrade) keep a NULL format, read as that version read them; the downgrade drops the
columns, keeping the rows; upgrading again works."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from shared.db.migrate import downgrade, upgrade

pytestmark = pytest.mark.integration

# what the previous version's alerter inserts: it does not know the column
OLD_INSERT = (
    "INSERT INTO webhook_deliveries (alert_id, url, attempt, delivered) VALUES ($1, 'https://x.example/', 1, true)"
)


async def _run(url: str, *statements: tuple[str, tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(url)
    try:
        return [[tuple(r) for r in await conn.fetch(sql, *args)] for sql, args in statements]
    finally:
        await conn.close()


def test_0015_adds_a_nullable_format_old_rows_and_old_writers_keep_null_and_downgrades(scratch: Any) -> None:
    upgrade(scratch.settings, "0014")
    asyncio.run(_run(scratch.url, (OLD_INSERT, ("before",))))
    upgrade(scratch.settings, "0015")
    columns = (
        "SELECT is_nullable, column_default FROM information_schema.columns WHERE table_name = $1 AND column_name = $2"
    )
    asyncio.run(_run(scratch.url, (OLD_INSERT, ("during",))))  # an old alerter, still running
    inserted = (
        "INSERT INTO webhook_deliveries (alert_id, url, format, attempt, delivered) "
        "VALUES ('after', 'https://x.example/', 'slack', 1, true)"
    )
    rows = "SELECT alert_id, format FROM webhook_deliveries ORDER BY id"
    described, _, logged = asyncio.run(
        _run(scratch.url, (columns, ("webhook_deliveries", "format")), (inserted, ()), (rows, ()))
    )
    assert described == [("YES", None)]
    (claim,) = asyncio.run(_run(scratch.url, (columns, ("alerts", "notify_claim"))))
    assert claim == [("YES", None)]
    assert logged == [("before", None), ("during", None), ("after", "slack")]

    downgrade(scratch.settings, "0014")
    (gone,) = asyncio.run(_run(scratch.url, (columns, ("webhook_deliveries", "format"))))
    assert gone == []
    (claim_gone,) = asyncio.run(_run(scratch.url, (columns, ("alerts", "notify_claim"))))
    assert claim_gone == []
    asyncio.run(_run(scratch.url, (OLD_INSERT, ("downgraded",))))
    (kept,) = asyncio.run(_run(scratch.url, ("SELECT alert_id FROM webhook_deliveries ORDER BY id", ())))
    assert kept == [("before",), ("during",), ("after",), ("downgraded",)]
    upgrade(scratch.settings)
    (again,) = asyncio.run(_run(scratch.url, (rows, ())))
    assert again == [("before", None), ("during", None), ("after", None), ("downgraded", None)]
