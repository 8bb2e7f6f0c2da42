"""Dead letters: ``<topic>.dlq`` keeps the original bytes and headers, plus
``tw.*`` headers saying where the record came from and why it failed.

A :class:`RatioGuard` stops the service when too much is dead-lettered: that is
a misconfiguration (wrong topic, wrong model), not bad data.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import operator
import re
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, KafkaTimeoutError

from shared.config import KafkaSettings
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
ORIGIN_HEADER = f"{HEADER_PREFIX}origin"
"""Where the record was first read, before any replay, and what it held:
``<topic>[<partition>]@<offset>#<digest>`` (:func:`format_origin`, the digest the first
16 hex digits of the SHA-256 of the value). A replay writes the record at a new place, so
a raw record sent without an ``id`` would get another position id
(:func:`~shared.events.position_id`) at each replay: the first dead letter records the
place, a replay carries it, the record's next dead letter keeps it, and the classifier
takes the position id from it (:func:`record_origin`). The digest binds the place to the
bytes: a replay re-sends them unchanged, while a producer's own header, or one a
header-forwarding mirror copied onto another record, does not match."""
CARRIED_HEADERS = (TIMESTAMP_HEADER, REPLAYS_HEADER, ORIGIN_HEADER)
"""``tw.*`` headers a replayed record carries, that its next dead letter keeps."""
GROUP_HEADER = f"{HEADER_PREFIX}group"
"""The consumer group of the writer that dead-lettered the record (absent when the writer
was not told its group, as every writer before this header): reading the DLQ back, a
writer takes only its own group's dead letters for its own."""
Headers = Sequence[tuple[str, bytes]]
Place = tuple[str, int, int]


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


def dlq_headers(
    record: FailedRecord, service: str, now: datetime | None = None, *, group: str | None = None
) -> list[tuple[str, bytes]]:
    """Original headers plus the ``tw.*`` dead-letter metadata (with ``group``, the writer's
    consumer group, in ``tw.group``). Of the ``tw.*`` headers the record came with, a
    replayed record's ``tw.replays``, ``tw.timestamp`` (the original's time, not the
    replay's) and ``tw.origin`` (the original's place, see :func:`record_origin`) are
    kept; any other is replaced. The first dead letter of a record takes its place as
    ``tw.origin``."""
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
    timestamp_ms = _stamp(record)
    if timestamp_ms is not None:
        own.append((TIMESTAMP_HEADER, str(timestamp_ms).encode()))
    origin = record_origin(record.topic, record.partition, record.offset, record.headers, record.value)
    own.append((ORIGIN_HEADER, format_origin(origin, record.value)))
    if group is not None:
        own.append((GROUP_HEADER, group.encode()))
    return own


def _stamp(record: FailedRecord) -> int | None:
    """The original timestamp a dead letter of ``record`` carries in ``tw.timestamp``: a
    replayed record's own ``tw.timestamp`` (the original's), else its Kafka timestamp."""
    carried = original_timestamp(record.headers)
    return carried if carried is not None else record.timestamp_ms


def parse_dlq_headers(headers: Headers) -> DeadLetter:
    """Read the ``tw.*`` headers back into a :class:`DeadLetter`."""
    data: dict[str, object] = {
        k[len(HEADER_PREFIX) :]: v.decode()
        for k, v in headers
        if k.startswith(HEADER_PREFIX) and k not in CARRIED_HEADERS and k != GROUP_HEADER
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


_PLACE = re.compile(r"([A-Za-z0-9._-]{1,249})\[(0|[1-9][0-9]{0,9})\]@(0|[1-9][0-9]{0,18})")
"""``<topic>[<partition>]@<offset>``: a legal Kafka topic name, a partition and an offset
in Kafka's ranges (int32, int64), no sign, space or leading zero."""


def format_place(topic: str, partition: int, offset: int) -> str:
    return f"{topic}[{partition}]@{offset}"


def parse_place(value: bytes | None) -> Place | None:
    """A place written by :func:`format_place`; None for anything else."""
    if not isinstance(value, bytes):
        return None
    try:
        match = _PLACE.fullmatch(value.decode("ascii"))
    except UnicodeDecodeError:
        return None
    if match is None:
        return None
    topic, partition, offset = match.group(1), int(match.group(2)), int(match.group(3))
    if topic in {".", ".."} or partition > 2**31 - 1 or offset > 2**63 - 1:
        return None
    return topic, partition, offset


ORIGIN_DIGEST_HEX = 16
"""Hex digits of the value's SHA-256 a ``tw.origin`` carries."""


def value_digest(value: bytes | None) -> str:
    """The first :data:`ORIGIN_DIGEST_HEX` hex digits of the SHA-256 of ``value`` (a null
    value's: of no bytes)."""
    return hashlib.sha256(value or b"").hexdigest()[:ORIGIN_DIGEST_HEX]


def format_origin(place: Place, value: bytes | None) -> bytes:
    """The ``tw.origin`` of a record first read at ``place`` holding ``value``."""
    return f"{format_place(*place)}#{value_digest(value)}".encode()


def record_origin(topic: str, partition: int, offset: int, headers: Headers, value: bytes | None) -> Place:
    """Where the record at ``topic[partition]@offset`` holding ``value`` was first read: its
    ``tw.origin`` (:data:`ORIGIN_HEADER`) when it is a replayed record's, else its own
    place. The header counts only when it is the record's only ``tw.origin``, well formed,
    of the same topic (a replay goes back to the topic the record came from), its digest
    that of ``value`` (a replay re-sends the original bytes unchanged) and, on the same
    partition, its offset before ``offset`` (a record is replayed after it was first
    read). Anything else (a producer's own header, one a header-forwarding mirror copied
    onto another record, garbage) is ignored and the current place taken: a spoofed
    origin cannot give a record another's position id."""
    found = [v for k, v in headers if k == ORIGIN_HEADER]
    here = (topic, partition, offset)
    if len(found) != 1 or not isinstance(found[0], bytes):
        return here
    place, sep, digest = found[0].rpartition(b"#")
    if not sep:
        return here
    origin = parse_place(place)
    if origin is None or origin[0] != topic:
        return here
    if digest != value_digest(value).encode():
        return here
    if origin[1] == partition and origin[2] >= offset:
        return here
    return origin


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
"""Places (topic, partition, offset) a writer remembers having dead-lettered itself."""
SEED_TAIL = WRITTEN_KEPT
"""Dead letters read back per DLQ partition (its last ones) when a writer first
dead-letters a record of a source partition (see :meth:`DeadLetterWriter.seed_from`).
The writer's memory holds :data:`WRITTEN_KEPT` plus this many per DLQ partition read."""
SEED_TIMEOUT_S = 20.0
"""How long reading the DLQ back may take; past it the writer writes without what was
not read (a dead letter may then be written twice, none is lost), and does not read that
DLQ again in this process."""
SEED_FETCH_BYTES = 256 * 1024
"""Bytes fetched per DLQ partition and request when reading back (a larger record still
comes whole)."""
SERVICE_HEADER = f"{HEADER_PREFIX}service"


def fingerprint(key: bytes | None, value: bytes | None, timestamp_ms: int | None, replays: int = 0) -> bytes:
    """What tells one record at a place from another at the same place (a source topic
    deleted and created again restarts its offsets): its key, value, original timestamp
    (``tw.timestamp``) and replay count (``tw.replays``), which its dead letter carries
    unchanged. A replay has the original's key, value and timestamp: only its count
    tells it from the original, should it land at the original's place."""
    h = hashlib.blake2b(digest_size=16)
    stamp = None if timestamp_ms is None else str(timestamp_ms).encode()
    for part in (key, value, stamp, str(replays).encode()):
        if part is None:
            h.update(b"\x00")
        else:
            h.update(b"\x01" + len(part).to_bytes(8, "big"))
            h.update(part)
    return h.digest()


def record_mark(record: FailedRecord) -> bytes:
    """The fingerprint of ``record``, as :func:`letter_mark` reads it back from its dead letter."""
    return fingerprint(record.key, record.value, _stamp(record), replay_count(record.headers))


def letter_mark(key: bytes | None, value: bytes | None, headers: Headers) -> bytes:
    """The fingerprint of the record a dead letter (its key, value and headers) stands for."""
    return fingerprint(key, value, original_timestamp(headers), replay_count(headers))


def written_place(headers: Headers, service: str, group: str | None = None, *, unlabelled: bool = True) -> Place | None:
    """The source place (``tw.original_topic``, ``tw.partition``, ``tw.offset``) of a dead
    letter that ``service`` wrote in consumer group ``group`` (``tw.group``; one without
    that header counts as the group's when ``unlabelled``); None for another service's or
    group's, or when a header is missing or unreadable (never taken for a place it may not be)."""
    found: dict[str, bytes] = {}
    for k, v in headers:
        if k.startswith(HEADER_PREFIX) and k not in found:
            found[k] = v
    try:
        if found[SERVICE_HEADER].decode() != service or not _of_group(found.get(GROUP_HEADER), group, unlabelled):
            return None
        topic = found[f"{HEADER_PREFIX}original_topic"].decode()
        partition = int(found[f"{HEADER_PREFIX}partition"])
        offset = int(found[f"{HEADER_PREFIX}offset"])
    except (KeyError, AttributeError, TypeError, ValueError):  # absent, null, not text or not a number
        return None
    return (topic, partition, offset) if topic and partition >= 0 and offset >= 0 else None


def _of_group(label: bytes | None, group: str | None, unlabelled: bool) -> bool:
    if label is None:
        return unlabelled
    return group is not None and label.decode() == group


class DeadLetterWriter:
    """Writes failed records to their DLQ topic and waits for the broker's ack."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        service: str,
        guard: RatioGuard | None = None,
        stop: asyncio.Event | None = None,
        *,
        seed_from: KafkaSettings | None = None,
        group: str | None = None,
        default_group: str | None = None,
    ) -> None:
        self._producer = producer
        self._service = service
        self.guard = guard or RatioGuard()
        self._stop = stop
        # the places written lately, with their record's fingerprint: a batch retried
        # through an outage (the sinks retry the whole batch) dead-letters each record
        # once, not once per try. Oldest first: what was read back before what this writer
        # wrote, so a read-back never pushes out this writer's own latest
        self._written: OrderedDict[Place, bytes] = OrderedDict()
        self._seed_settings = seed_from
        self._group = group
        self._default_group = default_group
        self._seeded: set[tuple[str, int]] = set()  # source partitions read back for (or tried)
        self._read_to: dict[TopicPartition, int] = {}  # DLQ partition: next offset not read back
        self._dlq_partitions: set[TopicPartition] = set()  # DLQ partitions read back (or tried)
        self._unreadable: set[str] = set()  # DLQ topics whose read failed or timed out: not tried again
        self._seed_lock = asyncio.Lock()

    def seed_from(self, settings: KafkaSettings, *, group: str | None = None, default_group: str | None = None) -> None:
        """Read the DLQ back before dead-lettering a record of a source partition for the
        first time: the dead letters this service wrote before this writer (a previous
        process whose batch stayed uncommitted: stopped by the ratio guard halfway through
        a halved batch, or killed before committing) are remembered too, so the batch
        re-read does not write them again. The last :data:`SEED_TAIL` records of each DLQ
        partition are read (once, then only what came since), within
        :data:`SEED_TIMEOUT_S`; a record is skipped only when its dead letter was found
        (same service, consumer group, place and fingerprint). A failed read is logged and
        the writer writes as before: a dead letter may then be written twice, none is lost;
        that DLQ is not read again by this writer (each try would hold up the batch).

        ``group`` is the writer's consumer group, written in ``tw.group``: another group of
        the service (a shadow deployment) writes its own dead letters. A dead letter without
        ``tw.group`` (written before that header) counts as written by ``default_group``,
        the service's default group, only."""
        self._seed_settings = settings
        if group is not None:
            self._group = group
        if default_group is not None:
            self._default_group = default_group

    async def write(self, record: FailedRecord, *, max_backoff_s: float = 10.0) -> bool:
        """Produce the dead letter and wait for the ack; False (nothing written) when this
        writer wrote that record lately, as a batch retried through an outage asks again
        (or, reading the DLQ back, :meth:`seed_from`, an earlier writer of this service did).
        A broker fault worth retrying (no leader, a connection lost, a timeout in an
        outage) is retried with backoff, as the scored events are, rather than ending the
        service, until ``stop`` is set; any other error is raised."""
        place = (record.topic, record.partition, record.offset)
        mark = record_mark(record)
        if self._written.get(place) != mark and (record.topic, record.partition) not in self._seeded:
            await self._seed(record.topic, record.partition)
        if self._written.get(place) == mark:
            log.info("%s was dead-lettered already; not written again", record.place)
            return False
        log.warning("dead-lettering %s: %s: %s", record.place, record.error_class, record.reason[:300])
        # written with the current time, the original's in ``tw.timestamp``: a DLQ topic
        # deletes by record timestamp, and a backfill's could be past its retention already
        headers = dlq_headers(record, self._service, group=self._group)
        backoff = 0.2
        while True:
            try:
                await self._producer.send_and_wait(
                    Topics.dlq(record.topic), value=record.value, key=record.key, headers=headers
                )
                self._remember(place, mark)
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

    def _remember(self, place: Place, mark: bytes) -> None:
        self._written[place] = mark
        self._written.move_to_end(place)
        self._trim()

    def _recall(self, found: list[tuple[int, Place, bytes]]) -> None:
        """Remember what was read back as older than anything remembered: the latest
        found last, before what this writer wrote itself (kept as it is)."""
        for _ts, place, mark in sorted(found, key=operator.itemgetter(0), reverse=True):
            if place not in self._written:
                self._written[place] = mark
                self._written.move_to_end(place, last=False)
        self._trim()

    def _trim(self) -> None:
        """Forget the oldest beyond :data:`WRITTEN_KEPT` plus :data:`SEED_TAIL` per DLQ partition read."""
        kept = WRITTEN_KEPT + SEED_TAIL * len(self._dlq_partitions)
        while len(self._written) > kept:
            self._written.popitem(last=False)

    async def _seed(self, topic: str, partition: int) -> None:
        """Read back ``topic``'s DLQ (see :meth:`seed_from`) once for this source partition."""
        settings = self._seed_settings
        if settings is None:
            return
        async with self._seed_lock:
            if (topic, partition) in self._seeded:
                return
            self._seeded.add((topic, partition))  # tried once: after a failure, written as before
            dlq = Topics.dlq(topic)
            if dlq in self._unreadable:
                log.info("not reading %s back for %s[%d]: it could not be read before", dlq, topic, partition)
                return
            started = time.perf_counter()
            found: list[tuple[int, Place, bytes]] = []
            reading = asyncio.ensure_future(self._read_back(settings, dlq, topic, found))
            waits: set[asyncio.Future[Any]] = {reading}
            stopping = None if self._stop is None else asyncio.ensure_future(self._stop.wait())
            if stopping is not None:
                waits.add(stopping)
            try:
                await asyncio.wait(waits, timeout=SEED_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if stopping is not None:
                    stopping.cancel()
                if not reading.done():
                    reading.cancel()
                    await asyncio.wait({reading})  # its consumer stopped; raises nothing of its own
            self._recall(found)  # what was found is in the DLQ, even if reading stopped short
            elapsed = time.perf_counter() - started
            if not reading.cancelled() and reading.exception() is None:
                log.info("read %s back in %.2fs: %d dead letters by %s", dlq, elapsed, len(found), self._service)
                return
            if not reading.cancelled():
                why = f"{type(reading.exception()).__name__}: {reading.exception()}"
            elif self._stop is not None and self._stop.is_set():
                why = "stopping"
            else:
                why = f"not done in {SEED_TIMEOUT_S:.0f} s"
            self._unreadable.add(dlq)
            log.warning(
                "could not read %s back (%s; %d dead letters found in %.2fs): a dead letter written before "
                "this start for %s may be written again; not read again by this process",
                dlq,
                why,
                len(found),
                elapsed,
                topic,
            )

    @property
    def _unlabelled(self) -> bool:
        """Whether a dead letter without ``tw.group`` (older than that header) is this writer's."""
        return self._group is None or self._group == self._default_group

    async def _read_back(
        self, settings: KafkaSettings, dlq: str, topic: str, found: list[tuple[int, Place, bytes]]
    ) -> None:
        """Add to ``found`` (timestamp, place, fingerprint) of each dead letter of ``topic``
        this service's group wrote (see :meth:`seed_from`), of the last :data:`SEED_TAIL` in
        each partition of ``dlq`` (or those after what an earlier call read); none when
        ``dlq`` does not exist."""
        tps = await _partitions(settings, dlq)
        if not tps:
            return
        self._dlq_partitions.update(tps)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=f"{settings.client_id_prefix}-{self._service}-dlq-seed",
            enable_auto_commit=False,
            request_timeout_ms=settings.request_timeout_ms,
            max_partition_fetch_bytes=SEED_FETCH_BYTES,  # decoded in the event loop: small steps
        )
        await consumer.start()
        try:
            ends = await consumer.end_offsets(tps)
            begins = await consumer.beginning_offsets(tps)
            todo: dict[TopicPartition, int] = {}
            for tp in tps:
                start = max(begins[tp], ends[tp] - SEED_TAIL, self._read_to.get(tp, 0))
                if start < ends[tp]:
                    todo[tp] = start
                else:
                    self._read_to[tp] = max(self._read_to.get(tp, 0), ends[tp])
            if not todo:
                return
            consumer.assign(list(todo))
            for tp, start in todo.items():
                consumer.seek(tp, start)
            while todo:
                batch = await consumer.getmany(*todo, timeout_ms=500, max_records=200)
                for tp, records in batch.items():
                    for r in records:
                        if r.offset >= ends[tp]:
                            break
                        headers = list(r.headers or ())
                        place = written_place(headers, self._service, self._group, unlabelled=self._unlabelled)
                        if place is not None and place[0] == topic:
                            found.append((r.timestamp, place, letter_mark(r.key, r.value, headers)))
                for tp in list(todo):
                    position = await consumer.position(tp)
                    if position >= ends[tp]:
                        del todo[tp]
                        consumer.pause(tp)
                        self._read_to[tp] = max(self._read_to.get(tp, 0), ends[tp])
        finally:
            await consumer.stop()


async def _partitions(settings: KafkaSettings, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic``; none when it does not exist (not created by asking:
    the metadata of every topic first, a broker may auto-create a topic asked for by name)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=settings.request_timeout_ms
    )
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return []
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    parts = [p["partition"] for d in described if d.get("error_code", 0) == 0 for p in d.get("partitions", [])]
    return [TopicPartition(topic, p) for p in sorted(parts)]
