"""A scored event storage would refuse is dead-lettered at decode, and the events after
it are counted: it is not retried as if PostgreSQL were down."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from services_proc import log_tail, running
from sink_outage import produce
from sqlalchemy import func, select
from tw_testing import wait_until

from services.aggregator.config import AggregatorSettings
from shared.db.models import TrendMinute
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics

pytestmark = pytest.mark.integration


def _scored(mid: str, entities: list[str]) -> bytes:
    """A scored news event on the wire, written by hand: the contract refuses NUL."""
    now = datetime.now(UTC).isoformat()
    score = {"label": "negative", "confidence": 0.9, "probs": {"negative": 0.9}, "model": "m", "version": "v1"}
    event = {"id": mid, "stream": "news", "event_time": now, "received_time": now, "text": "t", "sentiment": score}
    return json.dumps(event | {"entities": entities}).encode()


async def test_a_nul_in_an_entity_is_dead_lettered_and_the_next_event_counted(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    """jsonb and text[] refuse NUL: the valid contract raised DBAPIError at the insert,
    classed retryable, so the batch, and every partition with it, was retried for ever
    and nothing after it was counted."""
    settings: AggregatorSettings = service_settings(AggregatorSettings)
    topic = settings.topics.text_scored
    await ensure_topics(settings.kafka, [topic])
    entity = f"E{unique}"
    bad = _scored(f"{unique}-bad", [entity, "AC\x00ME"])
    assert b"\\u0000" in bad
    env = {"TW_AGGREGATOR_GROUP_ID": f"agg-{unique}", "TW_AGGREGATOR_MAX_WAIT_MS": "1000"}  # one batch

    async def counted() -> int:
        async with sessions() as s:
            q = select(func.coalesce(func.sum(TrendMinute.count), 0)).where(TrendMinute.entity == entity)
            return int((await s.execute(q)).scalar() or 0)

    with running("aggregator", settings, tmp_path, **env):
        await wait_until(lambda: "aggregator consuming" in log_tail(tmp_path, "aggregator", 200_000), timeout=60)
        await produce(settings, topic, [bad, _scored(f"{unique}-ok", [entity])])
        await wait_until(counted, timeout=30)
        letters = await dlq_ops.list_entries(settings.kafka, topic)
    assert await counted() == 1
    assert [e.value for e in letters] == [bad]
    meta = letters[0].meta
    assert meta is not None and meta.error_class == "ValidationError" and "entities.1" in meta.reason, meta
    assert "NUL" in meta.reason
    assert "pausing and retrying" not in log_tail(tmp_path, "aggregator", 200_000)
