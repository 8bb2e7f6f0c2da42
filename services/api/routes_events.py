"""``POST /v1/events``: validate a batch of raw events and produce it to the raw topics.

All or nothing at validation: one invalid item answers 422 with field-level
errors per item index, and nothing is produced. An item without an id gets a random
one; the answer lists every item's id, given or assigned. Produced with ``acks=all``
on an idempotent producer; 202 once every record is acknowledged. If Kafka does not
acknowledge within ``TW_API_PRODUCE_TIMEOUT_S`` the answer is 503 and the outcome is
unknown: some events may have been delivered (the partitions that acknowledged in
time, or records still in flight). Its ``details`` give each item's id, so a client
retries with those ids, which the pipeline counts once (a retry without them would
get new ids and count the delivered events twice).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, ValidationError

from services.api.auth import require
from services.api.deps import SERVICE, Deps, get_deps, get_settings
from services.api.errors import ApiError, error_responses
from services.ingest.produce import prepare, produce
from shared.events import InvalidEvent, RawEvent
from shared.metrics import metrics

router = APIRouter(tags=["events"])
log = logging.getLogger("tonewatch.api.events")
STREAMS = ("news", "chat")


class EventsIn(BaseModel):
    """A batch of raw events; each names its ``stream`` (news or chat) and carries the
    contract's fields (``id`` and ``event_time`` are filled in when missing)."""

    events: list[dict[str, Any]] = Field(
        min_length=1,
        examples=[[{"stream": "news", "text": "Acme shares slump after profit warning", "source": "wire"}]],
    )


class Accepted(BaseModel):
    accepted: int
    ids: list[str]


def item_errors(index: int, exc: InvalidEvent) -> list[dict[str, Any]]:
    """Field-level details of one invalid item."""
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        return [
            {"loc": ["body", "events", index, *e["loc"]], "message": e["msg"], "type": e["type"]}
            for e in cause.errors()
        ]
    return [{"loc": ["body", "events", index], "message": exc.reason, "type": exc.error_class}]


def item_ids(events: list[RawEvent]) -> list[dict[str, Any]]:
    """Each item's id by its index, for a 503: an id the server assigned must reach the
    client, or its retry would send a delivered event again under a new id."""
    return [{"loc": ["body", "events", i, "id"], "id": e.id} for i, e in enumerate(events)]


def validate_batch(items: list[dict[str, Any]]) -> list[RawEvent]:
    """Every item as its contract, or :class:`ApiError` 422 listing every invalid field."""
    events: list[RawEvent] = []
    details: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        stream = item.get("stream")
        if stream not in STREAMS:
            details.append(
                {
                    "loc": ["body", "events", i, "stream"],
                    "type": "literal_error",
                    "message": f"stream must be 'news' or 'chat', got {stream!r}",
                }
            )
            continue
        try:
            events.append(prepare(item, stream))
        except InvalidEvent as exc:
            details.extend(item_errors(i, exc))
    if details:
        bad = len({d["loc"][2] for d in details})
        raise ApiError(
            422,
            f"{bad} of {len(items)} events are invalid; nothing was produced",
            code="validation_error",
            details=details,
        )
    return events


@router.post(
    "/v1/events",
    status_code=202,
    response_model=Accepted,
    dependencies=[Depends(require("write"))],
    responses=error_responses(
        {
            413: "Body too large",
            503: "Kafka did not acknowledge every event; some may have been delivered: retry with the ids "
            "in `details` (`{loc, id}` per item, assigned ones included)",
        }
    ),
)
async def post_events(body: EventsIn, request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> Accepted:
    """Ingest raw news or chat events."""
    settings = get_settings(request)
    if len(body.events) > settings.max_events_per_request:
        raise ApiError(
            413,
            f"at most {settings.max_events_per_request} events per request",
            details=[{"loc": ["body", "events"], "max_items": settings.max_events_per_request}],
        )
    events = validate_batch(body.events)
    try:
        # The idempotent producer retries while the broker is unreachable and would
        # hold the request for as long as the outage lasts.
        async with asyncio.timeout(settings.produce_timeout_s):
            producer = await deps.producer()
            await produce(producer, settings.topics, events)
    except (KafkaError, OSError) as exc:  # TimeoutError is an OSError
        reason = f"no acknowledgement within {settings.produce_timeout_s:g}s" if isinstance(exc, TimeoutError) else exc
        log.warning("producing %d events failed: %s: %s", len(events), type(exc).__name__, reason)
        raise ApiError(
            503,
            "Kafka did not acknowledge every event, so the outcome is unknown: some may have been delivered. "
            "Retry later with the same event ids (each item's id is in details, assigned ones included): "
            "the pipeline counts an event once",
            code="kafka_unavailable",
            details=item_ids(events),
            headers={"Retry-After": "5"},
        ) from exc
    m = metrics()
    for event in events:
        m.events_out.labels(SERVICE, settings.topics.raw(event.stream)).inc()
    return Accepted(accepted=len(events), ids=[e.id for e in events])
