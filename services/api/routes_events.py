"""``POST /v1/events``: validate a batch of raw events and produce it to the raw topics.

A body not sent as JSON (no ``Content-Type``, or one other than ``application/json``
or ``application/*+json``) answers 415. All or nothing at validation: one invalid
item, or an id a previous item of the same stream already has (the pipeline keeps one
event per id and stream), answers 422 with field-level errors per item index, and
nothing is produced. An item without an id gets a random one, or with an
``Idempotency-Key`` header one derived from the caller's API key, the header, its
stream and content, and how many earlier items of the request have the same stream and
content (:func:`idempotent_id`): the same when the request is sent again, with other
items left out or in another order; the answer lists every item's id, given or
assigned. Produced with ``acks=all`` on an idempotent producer; 202 once every record
is acknowledged. If Kafka does not acknowledge within ``TW_API_PRODUCE_TIMEOUT_S`` the
answer is 503 and the outcome is unknown: some events may have been delivered (the
partitions that acknowledged in time, or records still in flight). Its ``details``
give each item's id, so a client retries with those ids, or with the same
``Idempotency-Key``, which the pipeline counts once (a retry with neither would get
new ids and count the delivered events twice). An error a retry cannot fix answers
without ``Retry-After``: 413 ``record_too_large`` when the topic refuses a record as
too large, 502 ``kafka_refused`` for any other; the refused items carry the error's
name in ``details``, and the others' outcome is unknown as with a 503. A record the
broker refuses leaves a gap in the shared idempotent producer's sequence of its
partition, so the producer is replaced at once (one replacement, the old one stopped
once its records in flight are answered), and the records that failed only because of
it (batched with the refused one, sent after it to its partition, or sent while the old
producer closed: theirs or another request's) are sent again alone on the new producer;
one still failing that way answers 503 ``kafka_unavailable``, which a retry fixes.
"""

from __future__ import annotations

import asyncio
import email.message
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    BrokerNotAvailableError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    RecordListTooLargeError,
)
from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field, ValidationError

from services.api.auth import KeyInfo, require
from services.api.deps import SERVICE, Deps, get_deps, get_settings
from services.api.errors import ApiError, error_responses
from services.ingest.produce import prepare, send_each
from shared.events import InvalidEvent, RawEvent, new_id
from shared.kafka.produce import REFUSED
from shared.metrics import metrics
from shared.topics import Topics

router = APIRouter(tags=["events"])
log = logging.getLogger("tonewatch.api.events")
STREAMS = ("news", "chat")
SIZE_ERRORS = (MessageSizeTooLargeError, RecordListTooLargeError)
# aiokafka marks these final, yet the same records pass once the broker is back.
TRANSIENT_ERRORS = (KafkaTimeoutError, BrokerNotAvailableError)
# A record sent on a producer replaced after a refusal (services.api.deps.Deps.retire):
# sent after the refused one to its partition, or once the old producer was closing.
# Not the record's fault: on the new producer it passes.
AFTER_REFUSAL = (OutOfOrderSequenceNumber, ProducerClosed)
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_.:-]{1,100}$"
require_write = require("write")


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


def item_ids(events: list[RawEvent], refused: dict[int, BaseException] | None = None) -> list[dict[str, Any]]:
    """Each item's id by its index, for an answer whose outcome is unknown: an id the
    server assigned must reach the client, or its retry would send a delivered event
    again under a new id. An item Kafka refused also names the error."""
    refused = refused or {}
    return [
        {"loc": ["body", "events", i, "id"], "id": e.id}
        | ({"error": type(refused[i]).__name__} if i in refused else {})
        for i, e in enumerate(events)
    ]


def duplicate_id(index: int, event: RawEvent, first: int) -> dict[str, Any]:
    """The error of an item whose id an earlier item of its stream has."""
    return {
        "loc": ["body", "events", index, "id"],
        "type": "duplicate_id",
        "message": f"id {event.id!r} is also the id of item {first} ({event.stream}): the pipeline keeps one "
        "event per id and stream, so this one would be lost",
    }


def unwritable_item(index: int) -> dict[str, Any]:
    """The error of an item whose content cannot be written as one string to derive its
    ``Idempotency-Key`` id (nested too deeply)."""
    return {
        "loc": ["body", "events", index],
        "type": "value_error",
        "message": "the item is nested too deeply to derive its id from the Idempotency-Key; send it with an id",
    }


def canonical_content(item: dict[str, Any]) -> str:
    """An item's content as one string, whatever the order of its keys; an empty ``id``
    (null or "", assigned like a missing one) is left out."""
    content = {k: v for k, v in item.items() if not (k == "id" and v in (None, ""))}
    return json.dumps(content, sort_keys=True)  # ASCII, lone surrogates included


def idempotent_id(caller: str, key: str, stream: str, content: str, occurrence: int) -> str:
    """The id of an item without one in a request sent with ``Idempotency-Key: key``:
    ``idem:<digest>`` of the caller, the key, the item's stream and canonical ``content``,
    and ``occurrence``, how many earlier items of the request have the same stream and
    content; within the ``EventId`` contract. Not the item's index: a client that drops
    the item a 413 or 502 refused and sends the rest again, or sends them in another
    order, gets the ids it got before, so what was delivered is counted once; equal items
    in one request are still distinct events. The caller keeps two clients that chose the
    same key apart; the content makes a different body under a reused key new events
    rather than duplicates the pipeline would drop. No key is stored and none expires:
    the same content sent later with the same key is taken as the same events."""
    digest = json.dumps([caller, key, stream, content, occurrence])  # ASCII, lone surrogates included
    return f"idem:{hashlib.sha256(digest.encode()).hexdigest()[:32]}"


def id_source(
    item: dict[str, Any], stream: str, idempotency: tuple[str, str] | None, seen: Counter[tuple[str, str]]
) -> Callable[[], str]:
    """Where the id of ``item`` comes from should it have none: :func:`idempotent_id`
    with an ``Idempotency-Key``, else a random one. ``seen`` counts the items without an
    id so far by stream and content."""
    if idempotency is None or item.get("id") not in (None, ""):
        return new_id
    content = canonical_content(item)
    occurrence = seen[stream, content]
    seen[stream, content] += 1
    return partial(idempotent_id, *idempotency, stream, content, occurrence)


def validate_batch(items: list[dict[str, Any]], idempotency: tuple[str, str] | None = None) -> list[RawEvent]:
    """Every item as its contract, or :class:`ApiError` 422 listing every invalid field.
    ``idempotency`` is ``(caller, Idempotency-Key)``: an item without an id then gets
    :func:`idempotent_id` instead of a random one."""
    events: list[RawEvent] = []
    details: list[dict[str, Any]] = []
    first_of: dict[tuple[str, str], int] = {}  # (id, stream) -> the index of its first item
    seen: Counter[tuple[str, str]] = Counter()
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
            id_if_missing, unwritable = id_source(item, stream, idempotency, seen), False
        except (RecursionError, ValueError):
            # Nested too deeply for json.dumps (a 500 before): no contract field holds a
            # container, so validating the item below reports what is wrong with it.
            id_if_missing, unwritable = new_id, True
        try:
            event = prepare(item, stream, id_if_missing=id_if_missing)
        except InvalidEvent as exc:
            details.extend(item_errors(i, exc))
            continue
        if unwritable:  # never valid today; were it, a random id would break the key's promise
            details.append(unwritable_item(i))
            continue
        first = first_of.setdefault((event.id, event.stream), i)
        if first != i:
            details.append(duplicate_id(i, event, first))
        events.append(event)
    if details:
        bad = len({d["loc"][2] for d in details})
        raise ApiError(
            422,
            f"{bad} of {len(items)} events are invalid; nothing was produced",
            code="validation_error",
            details=details,
        )
    return events


def is_json(content_type: str) -> bool:
    """Whether FastAPI reads a body of ``content_type`` as JSON (the same parsing)."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


async def require_json(request: Request) -> None:
    """415 for a body sent as another media type (``curl -d`` sends a form) or with no
    ``Content-Type`` (FastAPI's strict default reads neither as JSON): FastAPI would
    validate its bytes and answer that the body is not an object."""
    content_type = request.headers.get("content-type")
    if not content_type or not is_json(content_type):
        sent_as = f"as {content_type!r}" if content_type else "without a Content-Type"
        raise ApiError(
            415,
            f"the body is sent {sent_as}; send the events as JSON (Content-Type: application/json)",
            details=[{"loc": ["header", "content-type"], "received": content_type, "expected": "application/json"}],
        )


def refusals(sent: list[asyncio.Future[Any]]) -> dict[int, BaseException]:
    """The error of each item Kafka (or the client) refused, by index."""
    return {i: exc for i, f in enumerate(sent) if f.done() and not f.cancelled() and (exc := f.exception()) is not None}


def retriable(exc: BaseException, replaced: bool = False) -> bool:
    """Whether sending the same records again may succeed; ``replaced``: the producer
    they were sent on was replaced after a refusal (then :data:`AFTER_REFUSAL` is)."""
    if isinstance(exc, (OSError, *TRANSIENT_ERRORS)):  # TimeoutError is an OSError
        return True
    if replaced and isinstance(exc, AFTER_REFUSAL):
        return True
    return isinstance(exc, KafkaError) and bool(exc.retriable)


async def send_watched(
    deps: Deps, producer: AIOKafkaProducer, topics: Topics, events: list[RawEvent], sent: list[asyncio.Future[Any]]
) -> None:
    """Send the events and wait until Kafka has answered for each
    (:func:`~services.ingest.produce.send_each`). A record the broker refuses
    (:data:`~shared.kafka.produce.REFUSED`) retires the producer as soon as the refusal is
    answered (:meth:`Deps.retire`): its sequence for that partition now has a gap."""

    def on_answer(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and isinstance(future.exception(), REFUSED):
            deps.retire(producer)

    await send_each(producer, topics, events, sent, on_answer)


async def send_events(
    deps: Deps, topics: Topics, events: list[RawEvent], sent: list[asyncio.Future[Any]], used: list[AIOKafkaProducer]
) -> None:
    """Send the events (:func:`send_watched`). When the producer was replaced after a
    refusal (of this request's record or another's), each item that failed is sent again
    alone (:attr:`Deps.alone`), in order, on the current producer, as the CLI ingest does: the broker refuses
    a whole batch, so the records batched with a refused one were refused too, and those
    sent after it to its partition failed with ``OutOfOrderSequenceNumber``; the items
    not sent after a failure of that kind are sent too. A record refused again is the
    item's refusal (and replaces that producer in turn). ``sent`` ends with each item's
    last future; ``used`` lists the producers sent on."""
    producer = await deps.producer()
    used.append(producer)
    await send_watched(deps, producer, topics, events, sent)
    if not deps.is_retired(producer):
        return
    again = [i for i, e in refusals(sent).items() if isinstance(e, (*REFUSED, *AFTER_REFUSAL))]
    if sent and isinstance(sent[-1].exception(), AFTER_REFUSAL):
        again += range(len(sent), len(events))
    if again:
        log.info("sending %d events again, one by one (a producer was replaced after a refusal)", len(again))
    for i in again:
        one: list[asyncio.Future[Any]] = []
        try:
            async with deps.alone:  # not batched with another request's record sent again
                producer = await deps.producer()
                used.append(producer)
                await send_watched(deps, producer, topics, [events[i]], one)
        finally:
            if one and i < len(sent):
                sent[i] = one[0]
            elif one:
                sent.append(one[0])  # the unsent items come last, in order


UNKNOWN_OUTCOME = (
    "some may have been delivered. Send them again with the same event ids (each item's id is in details, "
    "assigned ones included): the pipeline counts an event once"
)
"""What a refusal answer says of the items Kafka did not refuse."""


def not_delivered(
    exc: BaseException | None,
    events: list[RawEvent],
    refused: dict[int, BaseException],
    timeout_s: float,
    replaced: bool = False,
) -> ApiError:
    """The answer when not every event was acknowledged: ``exc`` ended the wait (a
    timeout, the producer not starting), ``refused`` are the items Kafka refused;
    ``replaced``: a producer used was replaced after a refusal (:func:`retriable`)."""
    final = {i: e for i, e in refused.items() if not retriable(e, replaced)}
    details = item_ids(events, refused)
    if not final and (exc is None or retriable(exc, replaced)):
        reason = f"no acknowledgement within {timeout_s:g}s" if isinstance(exc, TimeoutError) else repr(exc or refused)
        log.warning("producing %d events failed: %s", len(events), reason)
        return ApiError(
            503,
            "Kafka did not acknowledge every event, so the outcome is unknown: some may have been delivered. "
            "Retry later with the same event ids (each item's id is in details, assigned ones included): "
            "the pipeline counts an event once",
            code="kafka_unavailable",
            details=details,
            headers={"Retry-After": "5"},
        )
    cause = next(iter(final.values()), exc)
    indices = ", ".join(str(i) for i in list(final)[:10]) + (", ..." if len(final) > 10 else "")
    which = f"event(s) {indices}" if final else "the events"
    if isinstance(cause, SIZE_ERRORS):
        log.warning("Kafka refused %s of %d as too large: %s", which, len(events), cause)
        return ApiError(
            413,
            f"Kafka refused {which} as larger than its topic accepts ({type(cause).__name__}); sending them again "
            f"cannot succeed. The other events' outcome is unknown: {UNKNOWN_OUTCOME}",
            code="record_too_large",
            details=details,
        )
    log.error("Kafka refused %s of %d: %s: %s", which, len(events), type(cause).__name__, cause)
    return ApiError(
        502,
        f"Kafka refused {which} with {type(cause).__name__}, an error a retry does not fix. "
        f"The other events' outcome is unknown: {UNKNOWN_OUTCOME}",
        code="kafka_refused",
        details=details,
    )


@router.post(
    "/v1/events",
    status_code=202,
    response_model=Accepted,
    dependencies=[Depends(require_write), Depends(require_json)],
    responses=error_responses(
        {
            413: "Body too large, more events than allowed, or (`record_too_large`) a record Kafka refused as "
            "larger than its topic accepts: the refused items carry the error in `details`, the others may have "
            "been delivered (retry those with the ids in `details`)",
            415: "The body is not sent as JSON (`Content-Type: application/json`)",
            502: "Kafka refused events with an error a retry does not fix (`kafka_refused`); the refused items carry "
            "the error in `details`, the others may have been delivered (retry those with the ids in `details`)",
            503: "Kafka did not acknowledge every event; some may have been delivered: retry with the ids "
            "in `details` (`{loc, id}` per item, assigned ones included)",
        }
    ),
)
async def post_events(
    body: EventsIn,
    request: Request,
    deps: Annotated[Deps, Depends(get_deps)],
    caller: Annotated[KeyInfo | None, Depends(require_write)],  # the guard above, run once
    idempotency_key: Annotated[
        str | None,
        Header(
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="1-100 characters of `A-Z a-z 0-9 _ . : -`. An item without an `id` gets one derived "
            "from the API key, this header, its stream and content (and how many earlier items of the body have "
            "the same stream and content) instead of a random one: sending the same items again with the same "
            "header (after a timeout or a 503, or without the items a 413 or 502 refused, in any order) gives "
            "them the same ids, and the pipeline counts those events once. An item whose content changed gets "
            "a new id. Keys are not stored and do not expire: the same key and content later are the same events.",
        ),
    ] = None,
) -> Accepted:
    """Ingest raw news or chat events."""
    settings = get_settings(request)
    if len(body.events) > settings.max_events_per_request:
        raise ApiError(
            413,
            f"at most {settings.max_events_per_request} events per request",
            details=[{"loc": ["body", "events"], "max_items": settings.max_events_per_request}],
        )
    who = str(caller.id) if caller is not None else "anon"
    events = validate_batch(body.events, None if idempotency_key is None else (who, idempotency_key))
    sent: list[asyncio.Future[Any]] = []
    used: list[AIOKafkaProducer] = []
    try:
        # The idempotent producer retries while the broker is unreachable and would
        # hold the request for as long as the outage lasts.
        async with asyncio.timeout(settings.produce_timeout_s):
            await send_events(deps, settings.topics, events, sent, used)
    except (KafkaError, OSError) as exc:  # TimeoutError is an OSError
        refused = refusals(sent)
        for future in sent:
            future.cancel()  # no longer awaited: Kafka's later answer is dropped, not logged as unretrieved
        replaced = any(deps.is_retired(p) for p in used)
        raise not_delivered(exc, events, refused, settings.produce_timeout_s, replaced) from exc
    if refused := refusals(sent):
        replaced = any(deps.is_retired(p) for p in used)
        raise not_delivered(None, events, refused, settings.produce_timeout_s, replaced)
    m = metrics()
    for event in events:
        m.events_out.labels(SERVICE, settings.topics.raw(event.stream)).inc()
    return Accepted(accepted=len(events), ids=[e.id for e in events])
