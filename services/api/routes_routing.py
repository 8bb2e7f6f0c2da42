"""``GET /v1/routing``: chat messages routed per work queue, from ``routing_minute``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from services.api.auth import require
from services.api.deps import Deps, get_deps
from services.api.query import Instant, latest_routing_bucket, make_window
from services.api.routes_alerts import only_query_params
from services.router.policy import QUEUES
from shared.db.models import RoutingMinute

router = APIRouter(tags=["routing"], dependencies=[Depends(require("read"))])


class QueueVolume(BaseModel):
    """One queue over the window: totals and per-minute counts aligned to ``buckets``."""

    queue: str
    count: int
    priority: int
    volume: list[int]


class RoutingResponse(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    buckets: list[datetime]
    queues: list[QueueVolume]


@router.get(
    "/v1/routing",
    response_model=RoutingResponse,
    dependencies=[Depends(only_query_params("from", "to", "points"))],
)
async def get_routing(
    deps: Annotated[Deps, Depends(get_deps)],
    from_: Annotated[Instant | None, Query(alias="from", description="Window start (inclusive).")] = None,
    to: Annotated[Instant | None, Query(description="Window end (exclusive); default: after the latest data.")] = None,
    points: Annotated[int, Query(ge=1, le=1440, description="Minutes in the default window.")] = 60,
) -> dict[str, Any]:
    """Queue volumes per minute; every known queue is listed, busiest first."""
    async with deps.reads() as session:
        anchor = await latest_routing_bucket(session) if to is None else None
        window = make_window(from_, to, "minute", default_points=points, anchor=anchor)
        rows = (
            await session.execute(
                select(
                    RoutingMinute.queue,
                    RoutingMinute.bucket,
                    func.sum(RoutingMinute.count),
                    func.sum(RoutingMinute.priority),
                )
                .where(RoutingMinute.bucket >= window.start, RoutingMinute.bucket < window.end)
                .group_by(RoutingMinute.queue, RoutingMinute.bucket)
            )
        ).all()
    buckets = window.buckets()
    index = {b: i for i, b in enumerate(buckets)}
    volumes: dict[str, list[int]] = {q: [0] * len(buckets) for q in QUEUES}
    priority: dict[str, int] = dict.fromkeys(QUEUES, 0)
    for queue, bucket, count, prio in rows:
        series = volumes.setdefault(queue, [0] * len(buckets))
        if (i := index.get(bucket)) is not None:
            series[i] += int(count or 0)
        priority[queue] = priority.get(queue, 0) + int(prio or 0)
    queues = [QueueVolume(queue=q, count=sum(v), priority=priority.get(q, 0), volume=v) for q, v in volumes.items()]
    queues.sort(key=lambda q: (-q.count, q.queue))
    return {"from": window.start, "to": window.end, "buckets": buckets, "queues": queues}
