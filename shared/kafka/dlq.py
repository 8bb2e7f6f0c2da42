"""Dead letters: ``<topic>.dlq`` keeps the original bytes and headers, plus
``tw.*`` headers saying where the record came from and why it failed.

A :class:`RatioGuard` stops the service when too much is dead-lettered: that is
a misconfiguration (wrong topic, wrong model), not bad data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import KafkaError, KafkaTimeoutError

from shared.events import DeadLetter
from shared.kafka.batches import StopAfterBatch
from shared.metrics import metrics
from shared.topics import Topics

log = logging.getLogger(__name__)

HEADER_PREFIX = "tw."
TIMESTAMP_HEADER = f"{HEADER_PREFIX}timestamp"
"""The original record's Kafka timestamp (epoch ms). Dead letters and replayed records are
written with the current time (an old timestamp, a backfill's, would let the broker delete
them at once under retention), so this header is where the original time travels: a replay
sends it with the record, and a raw event without ``event_time`` takes its time from it."""
REPLAYS_HEADER = f"{HEADER_PREFIX}replays"
"""How many times ``tonewatch dlq replay`` re-injected the record; carried from the
replayed record to its next dead letter, so a record that keeps failing is not replayed
for ever."""
CARRIED_HEADERS = (TIMESTAMP_HEADER, REPLAYS_HEADER)
"""``tw.*`` headers a replayed record carries, that its next dead letter keeps."""
Headers = Sequence[tuple[str, bytes]]


class DeadLetterRatioExceeded(StopAfterBatch):
    """Too large a share of recent records was dead-lettered. Raised after the batch's
    dead letters are written, so a sink commits that batch before it stops."""


@dataclass(frozen=True)
class FailedRecord:
    """A record that can never succeed, with its place and reason."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    error_class: str
    reason: str
    timestamp_ms: int | None = None
    """The record's Kafka timestamp; the dead letter keeps it in ``tw.timestamp`` (unless
    the record carries one already: a replayed record's is the original's)."""

    @property
    def place(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def dlq_headers(record: FailedRecord, service: str, now: datetime | None = None) -> list[tuple[str, bytes]]:
    """Original headers plus the ``tw.*`` dead-letter metadata. Of the ``tw.*`` headers
    the record came with, a replayed record's ``tw.replays`` and ``tw.timestamp`` (the
    original's time, not the replay's) are kept; any other is replaced."""
    meta = DeadLetter(
        original_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        error_class=record.error_class,
        reason=record.reason[:2_000],
        service=service,
        time=now or datetime.now(UTC),
    )
    own = [(k, v) for k, v in record.headers if not k.startswith(HEADER_PREFIX) or k == REPLAYS_HEADER]
    for field, value in meta.model_dump(mode="json").items():
        own.append((f"{HEADER_PREFIX}{field}", str(value).encode()))
    carried = original_timestamp(record.headers)  # a replayed record's: the original's
    timestamp_ms = carried if carried is not None else record.timestamp_ms
    if timestamp_ms is not None:
        own.append((TIMESTAMP_HEADER, str(timestamp_ms).encode()))
    return own


def parse_dlq_headers(headers: Headers) -> DeadLetter:
    """Read the ``tw.*`` headers back into a :class:`DeadLetter`."""
    data: dict[str, object] = {
        k[len(HEADER_PREFIX) :]: v.decode()
        for k, v in headers
        if k.startswith(HEADER_PREFIX) and k not in CARRIED_HEADERS
    }
    if "schema_version" in data:
        data["schema_version"] = int(str(data["schema_version"]))
    return DeadLetter.model_validate(data)


def original_headers(headers: Headers) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in headers if not k.startswith(HEADER_PREFIX)]


def original_timestamp(headers: Headers) -> int | None:
    """The original record's timestamp from ``tw.timestamp``; None when absent (a dead
    letter written before that header existed) or unreadable."""
    return _int_header(headers, TIMESTAMP_HEADER)


def replay_count(headers: Headers) -> int:
    """How many times the record was replayed (``tw.replays``); 0 when never, or unreadable."""
    count = _int_header(headers, REPLAYS_HEADER)
    return count if count is not None and count > 0 else 0


def _int_header(headers: Headers, name: str) -> int | None:
    """The first ``name`` header as an integer; None when absent, null or not a number."""
    for k, v in headers:
        if k == name:
            try:
                return int(v)
            except (TypeError, ValueError):
                return None
    return None


class RatioGuard:
    """Trips when more than ``max_ratio`` of the last ``window`` records failed
    (only once at least ``min_records`` were seen)."""

    def __init__(self, max_ratio: float = 0.5, window: int = 200, min_records: int = 50) -> None:
        self._max_ratio = max_ratio
        self._min_records = min_records
        self._outcomes: deque[bool] = deque(maxlen=window)

    def record(self, *, failed: bool) -> None:
        self._outcomes.append(failed)
        if len(self._outcomes) >= self._min_records and self.ratio > self._max_ratio:
            raise DeadLetterRatioExceeded(
                f"{self.ratio:.0%} of the last {len(self._outcomes)} records were dead-lettered "
                f"(limit {self._max_ratio:.0%}): stopping; check the topic, the producer and the contracts"
            )

    @property
    def ratio(self) -> float:
        return sum(self._outcomes) / len(self._outcomes) if self._outcomes else 0.0


WRITTEN_KEPT = 10_000
"""Places (topic, partition, offset) a writer remembers having dead-lettered."""


class DeadLetterWriter:
    """Writes failed records to their DLQ topic and waits for the broker's ack."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        service: str,
        guard: RatioGuard | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        self._producer = producer
        self._service = service
        self.guard = guard or RatioGuard()
        self._stop = stop
        # the places written lately: a batch retried through an outage (the sinks retry
        # the whole batch) dead-letters each record once, not once per try
        self._written: deque[tuple[str, int, int]] = deque(maxlen=WRITTEN_KEPT)
        self._written_set: set[tuple[str, int, int]] = set()

    async def write(self, record: FailedRecord, *, max_backoff_s: float = 10.0) -> bool:
        """Produce the dead letter and wait for the ack; False (nothing written) when this
        writer wrote that record lately, as a batch retried through an outage asks again.
        A broker fault worth retrying (no leader, a connection lost, a timeout in an
        outage) is retried with backoff, as the scored events are, rather than ending the
        service, until ``stop`` is set; any other error is raised."""
        place = (record.topic, record.partition, record.offset)
        if place in self._written_set:
            return False
        log.warning("dead-lettering %s: %s: %s", record.place, record.error_class, record.reason[:300])
        # written with the current time, the original's in ``tw.timestamp``: a DLQ topic
        # deletes by record timestamp, and a backfill's could be past its retention already
        headers = dlq_headers(record, self._service)
        backoff = 0.2
        while True:
            try:
                await self._producer.send_and_wait(
                    Topics.dlq(record.topic), value=record.value, key=record.key, headers=headers
                )
                self._remember(place)
                return True
            except KafkaError as exc:
                if not (exc.retriable or isinstance(exc, KafkaTimeoutError)):
                    raise
                if self._stop is not None and self._stop.is_set():
                    raise  # stopping: the batch stays uncommitted and is re-read
                log.warning("dead-lettering %s failed (%s); retrying in %.1fs", record.place, exc, backoff)
                if self._stop is None:
                    await asyncio.sleep(backoff)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), backoff)
                backoff = min(backoff * 2, max_backoff_s)

    async def dead_letter(self, record: ConsumerRecord[bytes, bytes], error_class: str, reason: str) -> None:
        """Dead-letter ``record`` as the sink loop asks (a :data:`~shared.kafka.batches.DeadLetterHook`),
        counted as a handler counts its own: the dead-letter metric, a failure in the guard
        (which may raise :class:`DeadLetterRatioExceeded`)."""
        failed = FailedRecord(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            list(record.headers or ()),
            error_class,
            reason,
            timestamp_ms=record.timestamp,
        )
        if await self.write(failed):
            metrics().dead_letters.labels(self._service, record.topic, error_class).inc()
        self.guard.record(failed=True)

    def _remember(self, place: tuple[str, int, int]) -> None:
        if len(self._written) == self._written.maxlen:
            self._written_set.discard(self._written[0])
        self._written.append(place)
        self._written_set.add(place)
