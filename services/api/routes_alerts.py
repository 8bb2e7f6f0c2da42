"""Alerts: list, acknowledge, resolve, and the live feed ``GET /v1/alerts/stream`` (SSE)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select, update
from starlette.types import Receive, Scope, Send

from services.api.alert_feed import AlertFeed, AlertOut, FeedItem, Resync, alerts_query, fetch_alerts, to_out
from services.api.auth import authorize, require
from services.api.deps import Deps, get_deps, get_settings
from services.api.errors import ApiError, error_responses
from services.api.query import Instant, check_order
from shared.db.models import Alert
from shared.events import AlertStatus, Stream

router = APIRouter(tags=["alerts"])
AlertId = Annotated[str, Path(max_length=64)]
SNAPSHOT_SIZE = 50

# action -> (statuses it may start from, target status, timestamp column)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "ack": (("open",), "acknowledged", "acknowledged_at"),
    "resolve": (("open", "acknowledged"), "resolved", "resolved_at"),
}


@router.get("/v1/alerts", response_model=list[AlertOut], dependencies=[Depends(require("read"))])
async def list_alerts(
    deps: Annotated[Deps, Depends(get_deps)],
    status: AlertStatus | None = None,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    stream: Stream | None = None,
    from_: Annotated[Instant | None, Query(alias="from", description="Only alerts whose window ends at/after.")] = None,
    to: Annotated[Instant | None, Query(description="Only alerts whose window starts before.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    """Alerts, newest first."""
    check_order(from_, to, equal_ok=True)  # an overlap: from == to is the alerts whose window holds it
    stmt = alerts_query()
    if status is not None:
        stmt = stmt.where(Alert.status == status)
    if entity is not None:
        stmt = stmt.where(Alert.entity == entity)
    if stream is not None:
        stmt = stmt.where(Alert.stream == stream)
    if from_ is not None:
        stmt = stmt.where(Alert.window_end >= from_)
    if to is not None:
        stmt = stmt.where(Alert.window_start < to)
    async with deps.sessions() as session:
        rows = (await session.execute(stmt.order_by(Alert.fired_at.desc(), Alert.id).limit(limit))).all()
    return [to_out(a, name) for a, name in rows]


async def transition(deps: Deps, alert_id: str, action: Literal["ack", "resolve"]) -> AlertOut:
    """Apply ``action`` atomically; 404 unknown alert, 409 when its status does not allow it."""
    sources, target, column = TRANSITIONS[action]
    async with deps.sessions.begin() as session:
        changed = (
            await session.execute(
                update(Alert)
                .where(Alert.id == alert_id, Alert.status.in_(sources))
                .values({"status": target, column: datetime.now(UTC)})
                .returning(Alert.id)
            )
        ).scalar_one_or_none()
        if changed is None:
            current = (await session.execute(select(Alert.status).where(Alert.id == alert_id))).scalar_one_or_none()
            if current is None:
                raise ApiError(404, f"no alert {alert_id!r}")
            raise ApiError(
                409,
                f"cannot {action} an alert that is {current}",
                code="invalid_transition",
                details=[{"status": current, "allowed_from": list(sources)}],
            )
        (alert,) = await fetch_alerts(session, [alert_id])
    return alert


@router.post(
    "/v1/alerts/{alert_id}/ack",
    response_model=AlertOut,
    dependencies=[Depends(require("write"))],
    responses=error_responses({404: "Unknown alert", 409: "Not open"}),
)
async def ack_alert(alert_id: AlertId, deps: Annotated[Deps, Depends(get_deps)]) -> AlertOut:
    """Acknowledge an open alert."""
    return await transition(deps, alert_id, "ack")


@router.post(
    "/v1/alerts/{alert_id}/resolve",
    response_model=AlertOut,
    dependencies=[Depends(require("write"))],
    responses=error_responses({404: "Unknown alert", 409: "Already resolved"}),
)
async def resolve_alert(alert_id: AlertId, deps: Annotated[Deps, Depends(get_deps)]) -> AlertOut:
    """Resolve an open or acknowledged alert."""
    return await transition(deps, alert_id, "resolve")


def sse(event: str, data: Any, event_id: int | None = None) -> str:
    """One server-sent event."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def recent_alerts(deps: Deps) -> list[dict[str, Any]]:
    """The stream's ``snapshot``: the latest alerts."""
    async with deps.sessions() as session:
        rows = (
            await session.execute(alerts_query().order_by(Alert.fired_at.desc(), Alert.id).limit(SNAPSHOT_SIZE))
        ).all()
    return [to_out(a, name).model_dump(mode="json") for a, name in rows]


KeyCheck = Callable[[], Awaitable[bool]]


def key_check(request: Request, deps: Deps) -> KeyCheck | None:
    """When reads need a key, whether the stream's key is still valid (a revoked key ends
    the stream within a heartbeat interval); None when reads are open."""
    if not get_settings(request).require_key_for_reads:
        return None

    async def still_valid() -> bool:
        try:
            await authorize(request, deps.sessions, "read")
        except ApiError:
            return False
        except Exception:  # noqa: BLE001 - a database hiccup: asked again at the next heartbeat
            return True
        return True

    return still_valid


async def alert_events(
    request: Request,
    queue: asyncio.Queue[FeedItem],
    recent: list[dict[str, Any]],
    heartbeat_s: float,
    still_valid: KeyCheck | None = None,
) -> AsyncIterator[str]:
    """``snapshot`` (recent alerts) first, then one ``alert`` event per new or changed alert;
    ends when the client leaves, after a ``resync`` event (the feed could not send the
    changes one by one: reconnect for a new snapshot), or when its key is no longer valid.
    The key is checked every heartbeat interval, whether or not alerts flow: a stream
    that never idles must not outlive its key."""
    yield "retry: 3000\n\n"
    yield sse("snapshot", {"alerts": recent}, 0)
    seq = 0
    loop = asyncio.get_running_loop()
    check_at = loop.time() + heartbeat_s
    while not await request.is_disconnected():
        if loop.time() >= check_at:
            if still_valid is not None and not await still_valid():
                return
            check_at = loop.time() + heartbeat_s
        try:
            item = await asyncio.wait_for(queue.get(), timeout=check_at - loop.time())
        except TimeoutError:
            yield ": keep-alive\n\n"
            continue
        if item is None:
            return
        if isinstance(item, Resync):
            yield sse("resync", {"reason": item.value})
            return
        seq += 1
        yield sse("alert", item.model_dump(mode="json"), seq)


class AlertStream(StreamingResponse):
    """The SSE response; ends the feed subscription however the response ends (also
    when its body never started: the client left before the first byte)."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], Awaitable[object]]) -> None:
        super().__init__(
            content, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()


@router.get(
    "/v1/alerts/stream",
    dependencies=[Depends(require("read"))],
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}},
)
async def stream_alerts(request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> StreamingResponse:
    """Live alerts as server-sent events: a ``snapshot`` of recent alerts, then ``alert`` events.
    The subscription and the snapshot are taken before the first byte, so an unreachable
    PostgreSQL answers 503 like every other route instead of cutting a started stream."""
    settings = get_settings(request)
    feed: AlertFeed = request.app.state.feed
    async with contextlib.AsyncExitStack() as stack:
        queue = await stack.enter_async_context(feed.subscribe())
        recent = await recent_alerts(deps)
        release = stack.pop_all().aclose
    events = alert_events(request, queue, recent, settings.sse_heartbeat_s, key_check(request, deps))
    return AlertStream(events, release)


@router.get(
    "/v1/alerts/{alert_id}",
    response_model=AlertOut,
    dependencies=[Depends(require("read"))],
    responses=error_responses({404: "Unknown alert"}),
)
async def get_alert(alert_id: AlertId, deps: Annotated[Deps, Depends(get_deps)]) -> AlertOut:
    """One alert with its explanation (the id a webhook or the ``alerts`` topic gave).
    Registered after ``/v1/alerts/stream``, which it would otherwise shadow."""
    async with deps.sessions() as session:
        found = await fetch_alerts(session, [alert_id])
    if not found:
        raise ApiError(404, f"no alert {alert_id!r}")
    return found[0]
