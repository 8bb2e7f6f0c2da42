"""Stage 4: produce scored events and wait for the broker's acks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber

from services.classifier.classify import ClassifierClosed
from services.classifier.score import key_of
from shared.events import ScoredEvent
from shared.kafka.produce import REFUSED, REFUSED_SIZE, Record, send_all

log = logging.getLogger(__name__)

Renew = Callable[[AIOKafkaProducer], Awaitable[AIOKafkaProducer]]
"""Retires the producer it is given and returns a new one, started. It also records the new
one where its owner stops it: :func:`publish` may raise after renewing (``ClassifierClosed``),
and then does not return it."""


@dataclass(frozen=True)
class Refusal:
    """A scored event the topic refused (:data:`~shared.kafka.produce.REFUSED`)."""

    index: int
    """Its position in the events published."""
    error: KafkaError
    size: int
    """Its record's bytes (key and value)."""

    def reason(self, topic: str) -> str:
        """Why it is not published, for its dead letter."""
        why = " (over the topic's max.message.bytes?)" if isinstance(self.error, REFUSED_SIZE) else ""
        return f"{topic} refused the scored event ({self.size:,} bytes){why}: {type(self.error).__name__}: {self.error}"


@dataclass
class Published:
    producer: AIOKafkaProducer
    """The producer to publish on from now on: a new one after a refusal."""
    refused: list[Refusal] = field(default_factory=list)


class _Backoff:
    def __init__(self, max_s: float, stop: asyncio.Event | None = None) -> None:
        self.next_s = 0.2
        self.max_s = max_s
        self.stop = stop if stop is not None else asyncio.Event()

    async def wait(self, what: str, exc: BaseException) -> None:
        """Wait before a retry; once ``stop`` is set (before or during the wait), raise
        :class:`~services.classifier.classify.ClassifierClosed`: the batch is left
        unacknowledged and re-read. Retried on, a broker fault at shutdown outlasted the
        grace period and the process was killed."""
        if not self.stop.is_set():
            log.warning("%s failed (%s); retrying in %.1fs", what, exc, self.next_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.next_s)
        if self.stop.is_set():
            raise ClassifierClosed(f"stopping while {what} failed ({exc}): the batch is left unacknowledged")
        self.next_s = min(self.next_s * 2, self.max_s)


async def publish(
    producer: AIOKafkaProducer,
    topic: str,
    events: Sequence[ScoredEvent],
    *,
    renew: Renew,
    max_backoff_s: float = 10.0,
    stop: asyncio.Event | None = None,
) -> Published:
    """Send every event and wait until all are acknowledged; retry on broker errors
    (an outage), with backoff, for as long as it lasts.

    An event the topic refuses (:data:`~shared.kafka.produce.REFUSED`: larger than its
    ``max.message.bytes``, say) fails however often it is sent: it is returned as a
    :class:`Refusal` (the caller dead-letters it) and the others are published. The
    broker refuses a whole batch, and the refusal leaves a gap in the idempotent
    producer's sequence of that partition (every later record there fails with
    ``OutOfOrderSequenceNumber``), so the producer is renewed and each event is sent
    again alone, in order; the producer is renewed again after each event refused alone.
    Before, every error was retried: one refused event stalled the classifier forever.

    A retry may send an event twice: downstream sinks count each id once. Once ``stop`` is
    set, a broker error raises :class:`~services.classifier.classify.ClassifierClosed`
    instead of being retried (the batch is left unacknowledged and re-read)."""
    records = [(topic, key_of(e), e.to_bytes()) for e in events]
    backoff = _Backoff(max_backoff_s, stop)
    while True:
        try:
            await send_all(producer, records)
            return Published(producer)
        except (*REFUSED, OutOfOrderSequenceNumber) as exc:
            log.warning(
                "%s refused a batch of %d scored events (%s: %s): sending each alone on a new producer",
                topic,
                len(events),
                type(exc).__name__,
                exc,
            )
            break
        except KafkaError as exc:
            await backoff.wait(f"producing {len(events)} scored events", exc)
    producer = await _renewed(producer, renew, backoff)
    refused: list[Refusal] = []
    for index, record in enumerate(records):
        producer = await _send_alone(producer, record, renew, backoff, index, refused)
    return Published(producer, refused)


async def _send_alone(
    producer: AIOKafkaProducer, record: Record, renew: Renew, backoff: _Backoff, index: int, refused: list[Refusal]
) -> AIOKafkaProducer:
    """Send one record until it is acknowledged or refused; returns the producer to use next."""
    while True:
        try:
            await send_all(producer, [record])
            return producer
        except REFUSED as exc:
            size = len(record[1]) + len(record[2])
            log.warning("%s refused a scored event (%d bytes): %s: %s", record[0], size, type(exc).__name__, exc)
            refused.append(Refusal(index, exc, size))
            return await _renewed(producer, renew, backoff)
        except OutOfOrderSequenceNumber as exc:  # a gap no refusal here explains: a new producer has none
            log.warning("producing a scored event failed (%s); renewing the producer", exc)
            producer = await _renewed(producer, renew, backoff)
        except KafkaError as exc:
            await backoff.wait("producing a scored event", exc)


async def _renewed(producer: AIOKafkaProducer, renew: Renew, backoff: _Backoff) -> AIOKafkaProducer:
    """A new producer in place of ``producer``; retried with backoff while the broker is down."""
    while True:
        try:
            return await renew(producer)
        except (KafkaError, OSError) as exc:
            await backoff.wait("starting a new producer", exc)
