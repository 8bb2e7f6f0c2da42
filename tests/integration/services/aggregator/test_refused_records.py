"""A scored event the contract lets through but PostgreSQL refuses for its content is
dead-lettered with the database's reason; the other events of its batch are counted and
the batch is committed: the partition does not stall as if PostgreSQL were down."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from services_proc import log_tail, running
from sink_outage import produce
from sqlalchemy import func, select, text
from tw_testing import committed_offsets, wait_until

from services.aggregator.config import AggregatorSettings
from shared.db.models import ScoredEventRow, TrendMinute
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics

pytestmark = pytest.mark.integration


def _scored(mid: str, entity: str, text: str = "t") -> bytes:
    now = datetime.now(UTC).isoformat()
    score = {"label": "negative", "confidence": 0.9, "probs": {"negative": 0.9}, "model": "m", "version": "v1"}
    event = {"id": mid, "stream": "news", "event_time": now, "received_time": now, "text": text}
    return json.dumps(event | {"sentiment": score, "entities": [entity]}).encode()


async def test_a_record_postgresql_refuses_is_dead_lettered_and_its_batch_counted(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    """A record PostgreSQL refuses for its content (here a CHECK constraint the test adds,
    SQLSTATE 23514; a lone surrogate in a text was such a record, 22P02, before decoding made
    it U+FFFD). Before: a DBAPIError, classed an outage, so the batch was retried for ever,
    nothing of it counted or committed and nothing dead-lettered. A lone surrogate now decodes
    to U+FFFD and is stored."""
    settings: AggregatorSettings = service_settings(AggregatorSettings)
    topic = settings.topics.text_scored
    await ensure_topics(settings.kafka, [topic])
    entity, group = f"E{unique}", f"agg-{unique}"
    marker = f"refused-{unique}"
    bad = _scored(f"{unique}-bad", entity, text=f"a text with {marker} in it")
    surrogate = _scored(f"{unique}-s", entity, text="lone \ud800 surrogate")
    assert b"\\ud800" in surrogate
    values = [_scored(f"{unique}-a", entity), bad, surrogate, _scored(f"{unique}-b", entity)]
    env = {"TW_AGGREGATOR_GROUP_ID": group, "TW_AGGREGATOR_MAX_WAIT_MS": "1000"}  # one batch
    check = f"tw_test_refuse_{unique}"

    async def counted() -> int:
        async with sessions() as s:
            q = select(func.coalesce(func.sum(TrendMinute.count), 0)).where(TrendMinute.entity == entity)
            return int((await s.execute(q)).scalar() or 0)

    async def all_committed() -> bool:
        return sum((await committed_offsets(settings, group)).values()) == len(values)

    async with sessions.begin() as s:  # NOT VALID: existing rows are not checked
        await s.execute(
            text(f"ALTER TABLE scored_events ADD CONSTRAINT {check} CHECK (text NOT LIKE '%{marker}%') NOT VALID")
        )
    try:
        with running("aggregator", settings, tmp_path, **env):
            await wait_until(lambda: "aggregator consuming" in log_tail(tmp_path, "aggregator", 200_000), timeout=60)
            await produce(settings, topic, values)
            await wait_until(all_committed, timeout=30)
            letters = await dlq_ops.list_entries(settings.kafka, topic)
            log = log_tail(tmp_path, "aggregator", 200_000)
    finally:
        async with sessions.begin() as s:
            await s.execute(text(f"ALTER TABLE scored_events DROP CONSTRAINT IF EXISTS {check}"))
    assert await counted() == 3
    assert [e.value for e in letters] == [bad]
    meta = letters[0].meta
    assert meta is not None and meta.error_class == "store", meta
    assert "SQLSTATE 23514" in meta.reason and check in meta.reason, meta.reason
    assert "pausing and retrying" not in log
    async with sessions() as s:
        q = select(ScoredEventRow.text).where(ScoredEventRow.id == f"{unique}-s")
        assert (await s.execute(q)).scalar_one() == "lone \ufffd surrogate"
