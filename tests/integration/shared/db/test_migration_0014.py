"""0014: ``scored_events (stream, event_time)``, built concurrently, on real PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from shared.db.migrate import downgrade, upgrade

pytestmark = pytest.mark.integration

INDEX = "ix_scored_events_stream_event_time"
VALID = f"SELECT indisvalid FROM pg_index WHERE indexrelid = '{INDEX}'::regclass"
# the messages endpoint's latest-500 cut of one stream (services/api/routes_entities.py)
LATEST_OF_A_STREAM = (
    "EXPLAIN SELECT id FROM scored_events WHERE stream = 'chat'"
    " ORDER BY event_time DESC, id DESC, stream DESC LIMIT 500"
)


async def _scalar(url: str, sql: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _explain(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET enable_seqscan = off")
        return "\n".join(r[0] for r in await conn.fetch(LATEST_OF_A_STREAM))
    finally:
        await conn.close()


async def _failed_build(url: str) -> None:
    """A concurrent build that fails half-way (a unique index over repeated values),
    leaving an INVALID index under the migration's name."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO scored_events (id, stream, event_time, received_time, entities, text, sentiment,"
            " sentiment_confidence, sentiment_score, negative_prob, model_version) VALUES"
            " ('a', 'chat', '2031-01-01Z', '2031-01-01Z', '{_all}', 'x', 'neutral', 0.5, 0, 0.1, 'v1'),"
            " ('b', 'chat', '2031-01-01Z', '2031-01-01Z', '{_all}', 'y', 'neutral', 0.5, 0, 0.1, 'v1')"
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {INDEX} ON scored_events (stream, event_time)")
    finally:
        await conn.close()


def test_0014_indexes_a_streams_latest_messages_repairs_an_invalid_build_and_downgrades(scratch: Any) -> None:
    """The latest messages of one stream are read from the index, not by walking every
    stream's newest events; an INVALID index a failed concurrent build left is rebuilt;
    the downgrade drops it."""
    upgrade(scratch.settings, "0013")
    assert asyncio.run(_scalar(scratch.url, f"SELECT to_regclass('{INDEX}')")) is None
    assert INDEX not in asyncio.run(_explain(scratch.url))
    upgrade(scratch.settings)
    assert asyncio.run(_scalar(scratch.url, VALID))
    plan = asyncio.run(_explain(scratch.url))
    assert INDEX in plan, plan

    downgrade(scratch.settings, "0013")
    assert asyncio.run(_scalar(scratch.url, f"SELECT to_regclass('{INDEX}')")) is None
    asyncio.run(_failed_build(scratch.url))
    assert not asyncio.run(_scalar(scratch.url, VALID))
    upgrade(scratch.settings)
    assert asyncio.run(_scalar(scratch.url, VALID))
