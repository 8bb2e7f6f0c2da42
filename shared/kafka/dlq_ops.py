"""Inspect and re-inject dead letters (``tonewatch dlq``)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
)

from shared.config import KafkaSettings
from shared.events import DeadLetter
from shared.kafka.clients import make_consumer, make_producer
from shared.kafka.dlq import original_headers, original_timestamp, parse_dlq_headers
from shared.topics import Topics

log = logging.getLogger(__name__)

REPLAY_GROUP = "tonewatch-dlq-replay"
REPLAY_CHUNK = 1_000

RECORD_ERRORS: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidTimestampError,
    CorruptRecordException,
)
"""Errors about one record (the topic refuses it), not about the broker or the topic: a
replay reports that record and goes on; any other error stops the replay uncommitted."""


@dataclass(frozen=True)
class DlqEntry:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    meta: DeadLetter | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int | None = None
    """The original record's timestamp: ``tw.timestamp``, else the dead letter's own."""


@dataclass(frozen=True)
class ReplayFailure:
    """A dead letter the original topic refused: it stays in the DLQ at ``place``."""

    dlq_topic: str
    partition: int
    offset: int
    original: str | None
    error_class: str
    reason: str

    @property
    def place(self) -> str:
        return f"{self.dlq_topic}[{self.partition}]@{self.offset}"


@dataclass
class ReplayReport:
    replayed: int = 0
    failed: list[ReplayFailure] = field(default_factory=list)


async def _drain(
    consumer: AIOKafkaConsumer, limit: int, end: dict[TopicPartition, int] | None = None
) -> list[DlqEntry]:
    """Up to ``limit`` entries, stopping at ``end`` (default: the partitions' current ends).
    A record at or past its partition's end is skipped and the partition paused, so what
    arrives meanwhile is left for later (the caller commits explicit offsets)."""
    out: list[DlqEntry] = []
    end = end or await consumer.end_offsets(list(consumer.assignment()))
    while len(out) < limit:
        done = True
        for tp in consumer.assignment():
            if await consumer.position(tp) < end[tp]:
                done = False
            elif tp not in consumer.paused():
                consumer.pause(tp)
        if done:
            break
        batch = await consumer.getmany(timeout_ms=500, max_records=min(500, limit - len(out)))
        for tp, records in batch.items():
            for r in records:
                if r.offset >= end[tp]:
                    consumer.pause(tp)
                    break
                headers = list(r.headers or ())
                try:
                    meta: DeadLetter | None = parse_dlq_headers(headers)
                except ValueError:
                    meta = None
                ts = original_timestamp(headers)
                out.append(
                    DlqEntry(
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        meta,
                        headers,
                        ts if ts is not None else r.timestamp,
                    )
                )
    return out[:limit]


async def _partitions(settings: KafkaSettings, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    parts = [p["partition"] for d in described if d.get("error_code", 0) == 0 for p in d.get("partitions", [])]
    return [TopicPartition(topic, p) for p in sorted(parts)]


async def list_entries(settings: KafkaSettings, topic: str, limit: int = 100) -> list[DlqEntry]:
    """Read up to ``limit`` dead letters of ``topic`` from the beginning (no commits)."""
    tps = await _partitions(settings, Topics.dlq(topic))
    if not tps:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        return await _drain(consumer, limit)
    finally:
        await consumer.stop()


class _Replayer:
    """Sends a chunk of dead letters back, pipelined, and sorts out the outcomes."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self.producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self.producer = make_producer(self._settings, client_id="dlq-replay")
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def _send(self, e: DlqEntry) -> asyncio.Future[object]:
        assert self.producer is not None
        try:
            fut: asyncio.Future[object] = await self.producer.send(
                e.meta.original_topic if e.meta else self._topic,
                e.value,
                key=e.key,
                headers=original_headers(e.headers),
                timestamp_ms=e.timestamp_ms,
            )
        except RECORD_ERRORS as exc:  # refused before sending (over the client's request size)
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(exc)
        return fut

    async def _restart(self) -> None:
        """A refused record leaves a gap in the idempotent producer's sequence of its
        partition (what follows gets ``OutOfOrderSequenceNumber``): a new producer (a new
        producer id) starts afresh."""
        await self.stop()
        await self.start()

    async def send_chunk(self, entries: list[DlqEntry]) -> list[ReplayFailure]:
        """Send ``entries`` (pipelined); when it returns each is acknowledged or refused for
        good (returned). Any error that is not about one record is raised: nothing of the
        chunk may be committed then."""
        refused: list[ReplayFailure] = []
        pending = entries
        while pending:
            outcomes = await asyncio.gather(*[await self._send(e) for e in pending], return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException) and not isinstance(
                    outcome, (*RECORD_ERRORS, OutOfOrderSequenceNumber)
                ):
                    raise outcome
            if not any(isinstance(o, RECORD_ERRORS) for o in outcomes):
                for outcome in outcomes:
                    if isinstance(outcome, BaseException):
                        raise outcome  # out of order, and not after a refused record
                break
            # each refused record alone (a batch may be refused where each record alone
            # fits), in order; then, pipelined again, what followed them in their partitions
            # (refused out of order); a refusal leaves the producer's sequence with a gap
            await self._restart()
            for e, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, RECORD_ERRORS):
                    try:
                        await (await self._send(e))
                    except RECORD_ERRORS as exc:
                        refused.append(self._failure(e, exc))
                        await self._restart()
            pending = [e for e, o in zip(pending, outcomes, strict=True) if isinstance(o, OutOfOrderSequenceNumber)]
        return refused

    def _failure(self, e: DlqEntry, exc: BaseException) -> ReplayFailure:
        size = len(e.value or b"") + len(e.key or b"")
        failure = ReplayFailure(
            Topics.dlq(self._topic),
            e.partition,
            e.offset,
            f"{e.meta.original_topic}[{e.meta.partition}]@{e.meta.offset}" if e.meta else None,
            type(exc).__name__,
            f"{exc} ({size:,} bytes)",
        )
        log.warning(
            "dlq replay: %s not replayed (left in the DLQ): %s: %s", failure.place, failure.error_class, failure.reason
        )
        return failure


async def replay_report(settings: KafkaSettings, topic: str, limit: int = 1_000_000) -> ReplayReport:
    """Re-inject dead letters into their original topic, with their original timestamps,
    ``REPLAY_CHUNK`` at a time: each chunk is produced (acknowledged) and then committed in
    group ``tonewatch-dlq-replay``, so memory stays bounded, a second replay does not
    repeat the first, and an interrupted one repeats at most a chunk. Only what was in the
    DLQ when the replay started is replayed (records that fail again and return, or any
    dead-lettered meanwhile, are left for the next).

    A record the original topic refuses for good (too large for its ``max.message.bytes``,
    say) is reported in :attr:`ReplayReport.failed` with its DLQ partition and offset, and
    the replay goes on and commits past it: it stays in the DLQ (``tonewatch dlq list``
    shows it) but a later replay does not retry it. Any other error (the broker down, the
    topic missing or not writable) stops the replay without committing the chunk."""
    consumer = make_consumer(settings, Topics.dlq(topic), group_id=REPLAY_GROUP, client_id="dlq-replay")
    replayer = _Replayer(settings, topic)
    report = ReplayReport()
    await consumer.start()
    try:
        await replayer.start()
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        for tp in consumer.assignment():  # what that poll may have fetched is read again
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        end = await consumer.end_offsets(list(consumer.assignment()))
        done = 0
        while done < limit:
            entries = await _drain(consumer, min(REPLAY_CHUNK, limit - done), end)
            if not entries:
                break
            failed = await replayer.send_chunk(entries)
            offsets: dict[TopicPartition, int] = {}
            for e in entries:
                tp = TopicPartition(Topics.dlq(topic), e.partition)
                offsets[tp] = max(offsets.get(tp, 0), e.offset + 1)
            await consumer.commit(offsets)
            report.failed += failed
            report.replayed += len(entries) - len(failed)
            done += len(entries)
        return report
    finally:
        await consumer.stop()
        await replayer.stop()


async def replay(settings: KafkaSettings, topic: str, limit: int = 1_000_000) -> int:
    """:func:`replay_report`, returning how many records were re-injected (the refused
    ones are logged; :func:`replay_report` lists them)."""
    return (await replay_report(settings, topic, limit)).replayed
