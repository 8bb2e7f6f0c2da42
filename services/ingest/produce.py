"""Validate input objects into raw contracts and produce them (``acks=all``,
idempotent producer). Used by file replay and by ``POST /v1/events``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.events import MAX_EVENT_BYTES, InvalidEvent, RawChat, RawEvent, RawNews, Stream, new_id, parse
from shared.topics import Topics


def prepare(data: dict[str, Any], stream: Stream, *, now: datetime | None = None) -> RawEvent:
    """Assign an id and event time when missing, then validate (``InvalidEvent`` on error)."""
    obj = dict(data)
    declared = obj.setdefault("stream", stream)
    if declared != stream:
        raise InvalidEvent(f"stream: unknown or mismatched stream {declared!r} (expected {stream!r})")
    if obj.get("id") in (None, ""):
        obj["id"] = new_id()
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


def key_of(event: RawEvent) -> bytes:
    return (event.conversation_id if isinstance(event, RawChat) else event.id).encode()


async def produce(producer: AIOKafkaProducer, topics: Topics, events: Sequence[RawEvent]) -> None:
    """Send and wait for every acknowledgement."""
    futures = [await producer.send(topics.raw(e.stream), e.to_bytes(), key=key_of(e)) for e in events]
    await asyncio.gather(*futures)
