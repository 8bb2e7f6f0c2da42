"""Batches at the edges: many entities, the calendar's first and last minutes a scored
event may carry, a model version changing within a batch, duplicates. After each, every
hour bucket must equal the sum of its minute buckets (checked in SQL), each event counts
once under each of its entities and version, and a replay adds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from tw_testing import fresh_database

from services.aggregator.persist import expire_trends, store_batch
from shared.config import PostgresSettings
from shared.events import Score, ScoredEvent

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_settings() -> Iterator[PostgresSettings]:
    """A database of this module's own: its news at the calendar's last minute moves the
    stream's clock (trend retention, the API's latest bucket) for every later test."""
    with fresh_database() as settings:
        yield settings


# hour rows whose minutes do not add up to them, per key (both tables, either side missing)
_MISMATCHED = text(
    """
    WITH m AS (
        SELECT stream, entity, date_bin('1 hour', bucket, TIMESTAMPTZ '2000-01-01 00:00Z') AS bucket, model_version,
            sum(count) AS count, sum(negative) AS negative, sum(neutral) AS neutral, sum(positive) AS positive
        FROM trend_minute WHERE entity LIKE :prefix GROUP BY 1, 2, 3, 4
    ), h AS (SELECT * FROM trend_hour WHERE entity LIKE :prefix)
    SELECT count(*) FROM m FULL JOIN h USING (stream, entity, bucket, model_version)
    WHERE (CAST(:straddled AS timestamptz) IS NULL
            OR bucket NOT BETWEEN CAST(:straddled AS timestamptz) - interval '1 hour'
                AND CAST(:straddled AS timestamptz))
        AND (m.count IS DISTINCT FROM h.count OR m.negative IS DISTINCT FROM h.negative
        OR m.neutral IS DISTINCT FROM h.neutral OR m.positive IS DISTINCT FROM h.positive)
    """
)
_TOTALS = text("SELECT model_version, sum(count) FROM trend_minute WHERE entity LIKE :prefix GROUP BY 1 ORDER BY 1")


def scored(mid: str, t: datetime, entities: list[str], *, version: str = "v1", label: str = "negative") -> ScoredEvent:
    probs = {"negative": 0.1, "neutral": 0.1, "positive": 0.1} | {label: 0.8}
    return ScoredEvent(
        id=mid,
        stream="news",
        event_time=t,
        received_time=t,
        text="t",
        entities=entities,
        sentiment=Score(label=label, confidence=0.9, probs=probs, model="m", version=version),
    )


async def _one(sessions: Any, q: Any, **params: Any) -> Any:
    async with sessions() as s:
        return (await s.execute(q, params)).all()


@pytest.mark.parametrize("retention_days", [0.0, 93.0])
async def test_edge_batches_keep_hours_equal_to_their_minutes(
    sessions: Any, unique: str, retention_days: float
) -> None:
    prefix = f"E{unique}{int(retention_days)}"
    now = datetime.now(UTC)
    many = [f"{prefix}-{i}" for i in range(3_000)]
    times = [
        datetime(1900, 1, 1, tzinfo=UTC),
        datetime(8999, 12, 31, 23, 59, 59, tzinfo=UTC),
        now - timedelta(days=92, minutes=59),
        now - timedelta(days=93, minutes=1),
        now,
    ]
    events = [
        scored(f"{prefix}-many", now, many + many[:10]),
        scored(f"{prefix}-many", now, [f"{prefix}-dup"]),  # a duplicate id: the first counts
    ]
    for j, t in enumerate(times):
        for v in ("v1", "v2"):
            events.append(scored(f"{prefix}-{j}-{v}", t, [f"{prefix}-x", f"{prefix}-y"], version=v))
    new = await store_batch(sessions, events, trend_retention_days=retention_days)
    assert new == 1 + 2 * len(times)
    assert await store_batch(sessions, events, trend_retention_days=retention_days) == 0
    await expire_trends(sessions, days=retention_days)
    # the hour across the retention cutoff keeps the minutes the run deleted (README: by design)
    straddled = None if retention_days == 0 else now - timedelta(days=retention_days)
    assert (await _one(sessions, _MISMATCHED, prefix=f"{prefix}%", straddled=straddled))[0][0] == 0
    totals = dict(await _one(sessions, _TOTALS, prefix=f"{prefix}%"))
    kept = len(times) if retention_days == 0 else len(times) - 2  # 1900 and 93 days + 1 minute go
    assert totals == {"v1": 3_000 + 2 * kept, "v2": 2 * kept}
