"""0013: ``webhook_deliveries (alert_id)``, built concurrently, on real PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from shared.db.migrate import downgrade, upgrade

pytestmark = pytest.mark.integration

INDEX = "ix_webhook_deliveries_alert_id"


async def _scalar(url: str, sql: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_0013_indexes_an_alerts_attempts_repairs_an_invalid_build_and_downgrades(scratch: Any) -> None:
    """The deliverer's read of an alert's attempts uses the index, not a scan of the whole
    log; an INVALID index a failed concurrent build left is rebuilt; the downgrade drops it."""
    upgrade(scratch.settings, "0012")
    assert asyncio.run(_scalar(scratch.url, f"SELECT to_regclass('{INDEX}')")) is None
    upgrade(scratch.settings)
    assert asyncio.run(_scalar(scratch.url, f"SELECT indisvalid FROM pg_index WHERE indexrelid = '{INDEX}'::regclass"))
    plan = asyncio.run(_explain(scratch.url))
    assert INDEX in plan, plan

    # a failed concurrent build leaves an INVALID index under the name: the migration repairs it
    downgrade(scratch.settings, "0012")
    assert asyncio.run(_scalar(scratch.url, f"SELECT to_regclass('{INDEX}')")) is None
    asyncio.run(_failed_build(scratch.url))
    assert not asyncio.run(
        _scalar(scratch.url, f"SELECT indisvalid FROM pg_index WHERE indexrelid = '{INDEX}'::regclass")
    )
    upgrade(scratch.settings)
    assert asyncio.run(_scalar(scratch.url, f"SELECT indisvalid FROM pg_index WHERE indexrelid = '{INDEX}'::regclass"))


async def _failed_build(url: str) -> None:
    """A concurrent build that fails half-way (a unique index over repeated values),
    leaving an INVALID index under the migration's name."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO webhook_deliveries (alert_id, url, attempt, delivered) "
            "VALUES ('a', 'https://x.example/', 1, false), ('a', 'https://x.example/', 2, true)"
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {INDEX} ON webhook_deliveries (alert_id)")
    finally:
        await conn.close()


async def _explain(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET enable_seqscan = off")
        rows = await conn.fetch("EXPLAIN SELECT url FROM webhook_deliveries WHERE alert_id = 'a' AND delivered")
        return "\n".join(r[0] for r in rows)
    finally:
        await conn.close()
