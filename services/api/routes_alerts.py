"""Alerts: list, acknowledge, resolve, and the live feed ``GET /v1/alerts/stream`` (SSE)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select, tuple_, update
from starlette.types import Receive, Scope, Send

from services.api.alert_feed import (
    SNAPSHOT,
    AlertFeed,
    AlertOut,
    FeedItem,
    Resync,
    alerts_query,
    fetch_alerts,
    read_changes,
    snapshot_xmin,
    to_out,
)
from services.api.auth import authorize, require
from services.api.deps import Deps, get_deps, get_settings
from services.api.errors import ApiError, error_responses
from services.api.query import Instant, check_order
from shared.db.models import Alert
from shared.events import AlertStatus, Stream, utc_in_range

router = APIRouter(tags=["alerts"])
AlertId = Annotated[str, Path(max_length=64)]
SNAPSHOT_SIZE = 50
NEWEST_FIRST = (Alert.fired_at.desc(), Alert.id.desc())  # the index on (fired_at DESC, id DESC) serves it
LIST_PARAMS = ("status", "entity", "stream", "from", "to", "limit", "cursor")
EVENT_ID = re.compile(r"[0-9]{1,19}")  # a transaction id; bigint's range: xid8 never gets that far
PAGE_HEADERS = {
    "X-Next-Cursor": {
        "description": "Present when more alerts may follow: pass it as `cursor` for the next page",
        "schema": {"type": "string"},
    },
    "Link": {
        "description": 'The next page\'s URL, `rel="next"` (with the same `X-Next-Cursor`)',
        "schema": {"type": "string"},
    },
}

# action -> (statuses it may start from, target status, timestamp column)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "ack": (("open",), "acknowledged", "acknowledged_at"),
    "resolve": (("open", "acknowledged"), "resolved", "resolved_at"),
}


def only_query_params(*names: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency refusing (422) query parameters other than ``names``: on a paged list a
    mistyped or unsupported parameter (``offset``, ``before``) silently returned the first
    page again."""
    known = frozenset(names)

    async def refuse_unknown(request: Request) -> None:
        unknown = sorted({name for name in request.query_params if name not in known})
        if unknown:
            raise ApiError(
                422,
                f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
                code="validation_error",
                details=[
                    {"loc": ["query", name], "message": "unknown query parameter", "type": "extra_forbidden"}
                    for name in unknown
                ],
            )

    return refuse_unknown


def encode_cursor(alert: AlertOut) -> str:
    """The opaque ``cursor`` of the page after ``alert``: its place in the sort order."""
    raw = f"{alert.fired_at.isoformat()}|{alert.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, str]:
    """``(fired_at, id)`` of a ``cursor``; 422 when it is not one this API gave."""
    try:  # bad base64 or UTF-8, no separator, a naive or out-of-range time: ValueError
        stamp, _, alert_id = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().partition("|")
        fired_at = datetime.fromisoformat(stamp)
        if fired_at.tzinfo is None or not 0 < len(alert_id) <= 64 or "\x00" in alert_id:
            raise ValueError("not a cursor")
        return utc_in_range(fired_at), alert_id
    except ValueError:
        raise ApiError(
            422,
            "invalid cursor: pass the X-Next-Cursor of a previous page unchanged",
            code="validation_error",
            details=[{"loc": ["query", "cursor"], "message": "not a cursor this API gave", "type": "value_error"}],
        ) from None


def next_page_headers(response: Response, request: Request, last: AlertOut) -> None:
    token = encode_cursor(last)
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"] + [("cursor", token)]
    response.headers["X-Next-Cursor"] = token
    response.headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'


@router.get(
    "/v1/alerts",
    response_model=list[AlertOut],
    dependencies=[Depends(require("read")), Depends(only_query_params(*LIST_PARAMS))],
    responses={200: {"description": "Alerts, newest first", "headers": PAGE_HEADERS}},
)
async def list_alerts(
    request: Request,
    response: Response,
    deps: Annotated[Deps, Depends(get_deps)],
    status: AlertStatus | None = None,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    stream: Stream | None = None,
    from_: Annotated[Instant | None, Query(alias="from", description="Only alerts whose window ends at/after.")] = None,
    to: Annotated[Instant | None, Query(description="Only alerts whose window starts before.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        str | None, Query(max_length=200, description="The next page: a previous page's `X-Next-Cursor`.")
    ] = None,
) -> list[AlertOut]:
    """Alerts, newest first (by ``fired_at``, then ``id``). When more may follow, the
    ``X-Next-Cursor`` header (and ``Link``) gives the next page: the same query with
    ``cursor``. Unknown query parameters are refused (422)."""
    check_order(from_, to, equal_ok=True)  # an overlap: from == to is the alerts whose window holds it
    stmt = alerts_query()
    if cursor is not None:
        stmt = stmt.where(tuple_(Alert.fired_at, Alert.id) < tuple_(*decode_cursor(cursor)))
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
    async with deps.reads() as session:
        rows = (await session.execute(stmt.order_by(*NEWEST_FIRST).limit(limit + 1))).all()
    page = [to_out(a, name) for a, name in rows[:limit]]
    if len(rows) > limit:
        next_page_headers(response, request, page[-1])
    return page


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


def sse(event: str, data: Any, event_id: int | str | None = None) -> str:
    """One server-sent event. An empty ``event_id`` clears the client's last event id."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def resync_event(reason: Resync) -> str:
    """``resync``. Its empty id clears the client's last event id: a client that reconnects
    by itself (an EventSource) then gets a snapshot, not another try at the same cursor."""
    return sse("resync", {"reason": reason.value}, "")


@dataclass(frozen=True)
class Opening:
    """The events a stream starts with, and the cursor they leave its client at (None:
    the last is a ``resync``, the stream ends)."""

    events: list[str]
    cursor: int | None


async def snapshot_opening(deps: Deps) -> Opening:
    """The stream's ``snapshot``: the latest alerts, read in one snapshot whose xmin is
    the event's id (the cursor: a change it does not show was made by a transaction at or
    above it). Under the reads' time limit, like :func:`resumed_opening`."""
    async with deps.reads(SNAPSHOT) as session:
        xmin = await snapshot_xmin(session)
        rows = (await session.execute(alerts_query().order_by(*NEWEST_FIRST).limit(SNAPSHOT_SIZE))).all()
    recent = [to_out(a, name).model_dump(mode="json") for a, name in rows]
    return Opening([sse("snapshot", {"alerts": recent}, xmin)], xmin)


async def resumed_opening(deps: Deps, since: int) -> Opening:
    """A reconnection's ``alert`` events: every alert changed since the cursor ``since``
    (some may have been sent already), or a ``resync`` when there are more than the feed
    sends one by one, or when the cursor is above the database's transaction ids (restored,
    failed over). Only the last event moves the cursor: the client has them all."""
    async with deps.reads(SNAPSHOT) as session:
        changes = await read_changes(session, since, {})
    if changes.xmin < since:
        return Opening([resync_event(Resync.DATABASE_RESET)], None)
    if changes.too_many:
        return Opening([resync_event(Resync.TOO_MANY_CHANGES)], None)
    ids = [since] * (len(changes.alerts) - 1) + [changes.xmin]
    events = [sse("alert", a.model_dump(mode="json"), i) for a, i in zip(changes.alerts, ids, strict=False)]
    return Opening(events, changes.xmin)


async def opening(deps: Deps, last_event_id: str | None) -> Opening:
    """A snapshot for a new client; for one that reconnects with a ``Last-Event-ID``, what
    changed since (its snapshot showed only the newest alerts: an older one changed in the
    gap was lost); a ``resync`` for an id this API never gave."""
    if not last_event_id:
        return await snapshot_opening(deps)
    if not EVENT_ID.fullmatch(last_event_id.strip()):
        return Opening([resync_event(Resync.INVALID_CURSOR)], None)
    return await resumed_opening(deps, int(last_event_id))


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
    start: Opening,
    heartbeat_s: float,
    still_valid: KeyCheck | None = None,
) -> AsyncIterator[str]:
    """The opening (a ``snapshot`` of recent alerts, or what changed since the client's
    ``Last-Event-ID``), then one ``alert`` event per new or changed alert, each with the
    cursor to resume from as its id; ends when the client leaves, after a ``resync`` event
    (the feed could not send the changes one by one: reconnect for a new snapshot), or when
    its key is no longer valid. The key is checked every heartbeat interval, whether or not
    alerts flow: a stream that never idles must not outlive its key."""
    yield "retry: 3000\n\n"
    for event in start.events:
        yield event
    if start.cursor is None:
        return
    cursor = start.cursor
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
            yield resync_event(item)
            return
        cursor = max(cursor, item.cursor)  # each is a valid cursor: the larger resends less
        yield sse("alert", item.model_dump(mode="json"), cursor)


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
async def stream_alerts(
    request: Request,
    deps: Annotated[Deps, Depends(get_deps)],
    last_event_id: Annotated[
        str | None, Header(description="The id of the last event received: resume after it (EventSource sends it).")
    ] = None,
) -> StreamingResponse:
    """Live alerts as server-sent events: a ``snapshot`` of recent alerts, then ``alert`` events.
    Event ids are cursors: a client that reconnects with ``Last-Event-ID`` gets the alerts
    changed since instead of a snapshot, or a ``resync`` when they are too many.
    The subscription and the opening are taken before the first byte, so an unreachable
    PostgreSQL answers 503 like every other route instead of cutting a started stream,
    and so does a read past the reads' time limit (``query_timeout``): the opening, and
    the feed's baseline when this stream starts the feed. Nothing read after the first
    byte has that limit: the feed's polls wait out a slow database, the stream only pauses.
    The subscription comes first: a change the opening does not show is queued."""
    settings = get_settings(request)
    feed: AlertFeed = request.app.state.feed
    async with contextlib.AsyncExitStack() as stack:
        queue = await stack.enter_async_context(feed.subscribe(lambda: deps.reads(SNAPSHOT)))
        start = await opening(deps, last_event_id)
        release = stack.pop_all().aclose
    events = alert_events(request, queue, start, settings.sse_heartbeat_s, key_check(request, deps))
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
    async with deps.reads() as session:
        found = await fetch_alerts(session, [alert_id])
    if not found:
        raise ApiError(404, f"no alert {alert_id!r}")
    return found[0]
