"""A valid scored event without ``entities`` (the contract's default is []) counts under
``_all`` in the real database: before, it went into the ledger but into no trend, and a
redelivery tagged ``_all`` was then skipped as already counted, so it never counted."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from services.aggregator.persist import store_batch
from shared.events import ScoredEvent, parse

pytestmark = pytest.mark.integration

_TRENDS = text(
    "SELECT 'm', entity, sum(count) FROM trend_minute WHERE model_version = :v GROUP BY entity "
    "UNION ALL SELECT 'h', entity, sum(count) FROM trend_hour WHERE model_version = :v GROUP BY entity "
    "ORDER BY 1, 2"
)


def record(eid: str, version: str, **extra: Any) -> ScoredEvent:
    base = {
        "id": eid,
        "stream": "news",
        "event_time": "2026-03-01T10:00:30Z",
        "received_time": "2026-03-01T10:00:31Z",
        "text": "Acme profits collapse",
        "sentiment": {
            "label": "negative",
            "confidence": 0.9,
            "probs": {"negative": 0.9, "neutral": 0.05, "positive": 0.05},
            "model": "m",
            "version": version,
        },
    }
    return parse(ScoredEvent, base | extra)


async def test_event_without_entities_counts_under_all_once(sessions: Any, unique: str) -> None:
    version = f"noent-{unique}"
    bare = record(f"ne-{unique}-1", version)
    assert bare.entities == []
    assert await store_batch(sessions, [bare]) == 1
    # the same event redelivered tagged _all, and one tagged ACME and _all: no double count
    assert await store_batch(sessions, [record(bare.id, version, entities=["_all"])]) == 0
    assert await store_batch(sessions, [record(f"ne-{unique}-2", version, entities=["ACME", "_all"])]) == 1
    async with sessions() as s:
        rows = [tuple(r) for r in (await s.execute(_TRENDS, {"v": version})).all()]
        stored = (
            await s.execute(text("SELECT entities FROM scored_events WHERE id = :i"), {"i": bare.id})
        ).scalar_one()
    assert rows == [("h", "ACME", 1), ("h", "_all", 2), ("m", "ACME", 1), ("m", "_all", 2)]
    assert stored == ["_all"]  # stored as counted, like every classified event
