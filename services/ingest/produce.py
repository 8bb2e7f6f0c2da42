"""Validate input objects into raw contracts and produce them (``acks=all``,
idempotent producer). Used by file replay and by ``POST /v1/events``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber

from shared.events import MAX_EVENT_BYTES, InvalidEvent, RawChat, RawEvent, RawNews, Stream, new_id, parse
from shared.kafka.produce import REFUSED
from shared.topics import Topics

RETRY_ALONE: tuple[type[KafkaError], ...] = (*REFUSED, OutOfOrderSequenceNumber)
"""The errors of a batch that a refusal explains: records batched with a refused one, or
sent to its partition after it (the idempotent producer's sequence then has a gap)."""

ORIGIN_ID_CHARS = 64
"""Characters of a source's name kept in the ids :func:`line_id` derives from it."""
_NOT_ID_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def prepare(
    data: dict[str, Any],
    stream: Stream,
    *,
    now: datetime | None = None,
    id_if_missing: Callable[[], str] = new_id,
) -> RawEvent:
    """Assign an id (``id_if_missing()``: a random one unless the caller can derive a stable
    one) and event time when missing, then validate (``InvalidEvent`` on error)."""
    obj = dict(data)
    declared = obj.setdefault("stream", stream)
    if declared != stream:
        raise InvalidEvent(f"stream: unknown or mismatched stream {declared!r} (expected {stream!r})")
    if obj.get("id") in (None, ""):
        obj["id"] = id_if_missing()
    if obj.get("event_time") in (None, ""):
        obj["event_time"] = (now or datetime.now(UTC)).isoformat()
    event: RawEvent = parse(RawNews, obj) if stream == "news" else parse(RawChat, obj)
    # UTF-8 takes at most 4 bytes a character: only long texts need the encoding measured.
    if len(event.text) * 4 > MAX_EVENT_BYTES // 2 and (size := len(event.to_bytes())) > MAX_EVENT_BYTES:
        raise InvalidEvent(
            f"text: the event is {size:,} bytes once encoded; at most {MAX_EVENT_BYTES:,} fit in one Kafka message",
            error_class="EventTooLarge",
        )
    return event


def line_id(origin: str, number: int, data: Mapping[str, Any]) -> str:
    """The id of line ``number`` of the source ``origin`` (a file's name) when the line has
    none: ``{origin}:{number}:{digest of origin, number and content}``. The same line gets
    the same id in every run, so after a replay crashed half-way, running the same file
    again sends the lines already sent under their first ids and the ledger counts them
    once; a line whose content changed is a new event. Within the ``EventId`` contract:
    the name is cut and its characters outside ``[A-Za-z0-9_.-]`` replaced (the digest
    keeps names that then look alike apart)."""
    content = json.dumps([origin, number, data], sort_keys=True)  # ASCII, lone surrogates included
    digest = hashlib.sha256(content.encode()).hexdigest()[:24]
    return f"{_NOT_ID_SAFE.sub('_', origin)[:ORIGIN_ID_CHARS]}:{number}:{digest}"


def key_of(event: RawEvent) -> bytes:
    return (event.conversation_id if isinstance(event, RawChat) else event.id).encode()


async def send_each(
    producer: AIOKafkaProducer,
    topics: Topics,
    events: Sequence[RawEvent],
    sent: list[asyncio.Future[Any]],
    on_answer: Callable[[asyncio.Future[Any]], None] | None = None,
) -> None:
    """Send the events in order and wait until Kafka has answered for each. ``sent``
    gets each item's future as it goes, so a caller that timed out still knows which
    were answered; a send that raises is recorded as its item's failed future and the
    later items are not sent. ``on_answer`` runs as each sent record is answered."""
    for event in events:
        try:
            future = await producer.send(topics.raw(event.stream), event.to_bytes(), key=key_of(event))
        except KafkaError as exc:
            failed = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            sent.append(failed)
            break
        if on_answer is not None:
            future.add_done_callback(on_answer)
        sent.append(future)
    if sent:
        await asyncio.wait(sent)


async def produce(producer: AIOKafkaProducer, topics: Topics, events: Sequence[RawEvent]) -> None:
    """Send and wait for every acknowledgement; raises the first item's error, if any."""
    sent: list[asyncio.Future[Any]] = []
    await send_each(producer, topics, events, sent)
    for future in sent:
        future.result()
