"""``GET /v1/trends``: sentiment per time bucket from ``trend_minute``/``trend_hour``,
summed across model versions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from services.api.auth import require
from services.api.deps import Deps, get_deps
from services.api.query import Granularity, Instant, Window, latest_trend_bucket, make_window
from services.api.routes_alerts import only_query_params
from shared.db.models import TrendHour, TrendMinute
from shared.entities import ALL
from shared.events import Stream

router = APIRouter(tags=["trends"], dependencies=[Depends(require("read"))])


class TrendBucket(BaseModel):
    """One bucket: counts per label and derived shares (``null`` when empty)."""

    bucket: datetime
    count: int
    negative: int
    neutral: int
    positive: int
    negative_share: float | None
    mean_score: float | None
    mean_confidence: float | None


class TrendsResponse(BaseModel):
    entity: str
    stream: Stream | None
    granularity: Granularity
    from_: datetime = Field(alias="from")
    to: datetime
    buckets: list[TrendBucket]


def to_bucket(bucket: datetime, count: int, neg: int, neu: int, pos: int, score: float, conf: float) -> TrendBucket:
    """Derive shares and means from summed columns."""
    return TrendBucket(
        bucket=bucket,
        count=count,
        negative=neg,
        neutral=neu,
        positive=pos,
        negative_share=neg / count if count else None,
        mean_score=score / count if count else None,
        mean_confidence=conf / count if count else None,
    )


async def query_trends(deps: Deps, entity: str, stream: Stream | None, window: Window, fill: bool) -> list[TrendBucket]:
    """Summed buckets of ``entity`` in ``window``; with ``fill``, empty buckets too."""
    table = TrendMinute if window.granularity == "minute" else TrendHour
    stmt = (
        select(
            table.bucket,
            func.sum(table.count),
            func.sum(table.negative),
            func.sum(table.neutral),
            func.sum(table.positive),
            func.sum(table.score_sum),
            func.sum(table.confidence_sum),
        )
        .where(table.entity == entity, table.bucket >= window.start, table.bucket < window.end)
        .group_by(table.bucket)
        .order_by(table.bucket)
    )
    if stream is not None:
        stmt = stmt.where(table.stream == stream)
    async with deps.reads() as session:
        rows = (await session.execute(stmt)).all()
    found = {
        r[0]: to_bucket(
            r[0], int(r[1] or 0), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0), float(r[5] or 0.0), float(r[6] or 0.0)
        )
        for r in rows
    }
    if not fill:
        return list(found.values())
    return [found.get(b) or to_bucket(b, 0, 0, 0, 0, 0.0, 0.0) for b in window.buckets()]


@router.get(
    "/v1/trends",
    response_model=TrendsResponse,
    response_model_by_alias=True,
    dependencies=[Depends(only_query_params("entity", "stream", "from", "to", "granularity", "points", "fill"))],
)
async def get_trends(
    deps: Annotated[Deps, Depends(get_deps)],
    entity: Annotated[str, Query(max_length=64, description="Entity key; `_all` is the whole stream.")] = ALL,
    stream: Annotated[Stream | None, Query(description="news or chat; both when omitted.")] = None,
    from_: Annotated[Instant | None, Query(alias="from", description="Window start (inclusive).")] = None,
    to: Annotated[Instant | None, Query(description="Window end (exclusive); default: after the latest data.")] = None,
    granularity: Granularity = "minute",
    points: Annotated[int, Query(ge=1, le=5000, description="Buckets in the default window.")] = 120,
    fill: Annotated[bool, Query(description="Include empty buckets with zero counts.")] = False,
) -> dict[str, Any]:
    """Sentiment per bucket for one entity: counts, negative share, mean score and confidence."""
    anchor = None
    if to is None:
        async with deps.reads() as session:
            anchor = await latest_trend_bucket(session, stream, granularity)
    window = make_window(from_, to, granularity, default_points=points, anchor=anchor)
    buckets = await query_trends(deps, entity, stream, window, fill)
    return {
        "entity": entity,
        "stream": stream,
        "granularity": granularity,
        "from": window.start,
        "to": window.end,
        "buckets": buckets,
    }
