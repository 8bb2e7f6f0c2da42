"""Inspect and re-inject dead letters (``tonewatch dlq``)."""

from __future__ import annotations

import asyncio
import logging
import operator
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    CommitFailedError,
    CorruptRecordException,
    IllegalStateError,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
)

from shared.config import KafkaSettings
from shared.events import DeadLetter
from shared.kafka.clients import make_producer
from shared.kafka.dlq import (
    ORIGIN_HEADER,
    REPLAYS_HEADER,
    TIMESTAMP_HEADER,
    format_origin,
    original_headers,
    original_timestamp,
    parse_dlq_headers,
    record_origin,
    replay_count,
)
from shared.topics import Topics

log = logging.getLogger(__name__)

REPLAY_GROUP = "tonewatch-dlq-replay"
REPLAY_CHUNK = 1_000
REPLAY_CHUNK_BYTES = 64 * 1024 * 1024
"""A chunk is also cut before its keys and values pass this many bytes (a chunk holds
at least one record): 1,000 dead letters of up to 2 MiB each would be 2 GB in memory."""
REBALANCE_TIMEOUT_MS = 300_000
"""How long the group waits for a replay to rejoin in a rebalance: a replay sends and
commits the chunk in hand before it lets its partitions go (the Java client's
``max.poll.interval.ms`` default; aiokafka's own default, the 10 s session timeout, is
shorter than sending a chunk of large dead letters may take)."""

RECORD_ERRORS: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidTimestampError,
    CorruptRecordException,
)
"""Errors about one record (the topic refuses it), not about the broker or the topic: a
replay reports that record and goes on; any other error stops the replay uncommitted."""

PERMANENT_ERROR_CLASSES = frozenset(
    {"EmptyRecord", "UnicodeDecodeError", "JSONDecodeError", "ValidationError", "UnknownStream"}
)
"""Error classes (``tw.error_class``) of dead letters that fail the same way however often
they are replayed: bytes that are no JSON object of a known stream, or no valid contract
(the classes :mod:`shared.events` gives when decoding). A plain replay leaves them in the
DLQ: sent back, they only return, and a burst of them trips the service's ratio guard. A
replay that names their class sends them (after a contract change that accepts them)."""
NOT_FOUND = "NotFound"
"""The error class of a place :func:`replay_places` found no dead letter at."""
MAX_REPLAYS = 3
"""A record replayed this many times (``tw.replays``) is not replayed again unless forced."""


@dataclass(frozen=True)
class Selection:
    """Which dead letters a replay sends back."""

    error_classes: frozenset[str] = frozenset()
    """Only these classes; empty: every class not in :data:`PERMANENT_ERROR_CLASSES` (and
    dead letters without metadata)."""
    max_replays: int = MAX_REPLAYS
    force: bool = False
    """Also send records replayed ``max_replays`` times already."""


@dataclass(frozen=True)
class DlqEntry:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    meta: DeadLetter | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int | None = None
    """The original record's timestamp: ``tw.timestamp``, else the dead letter's own (the
    original's in a dead letter written before ``tw.timestamp`` existed)."""
    replays: int = 0
    """How many times the record was replayed before this dead letter (``tw.replays``)."""

    @property
    def error_class(self) -> str | None:
        return self.meta.error_class if self.meta else None


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


@dataclass(frozen=True)
class Uncommitted:
    """Dead letters this replay sent back whose commit failed: the group had already given
    their partition to another member (this one was too slow to rejoin, or lost its
    session), so a replay that is assigned the partition from the offset committed before
    them sends them again. Offsets ``first`` to ``last``, both included."""

    dlq_topic: str
    partition: int
    first: int
    last: int
    reason: str

    @property
    def place(self) -> str:
        return f"{self.dlq_topic}[{self.partition}]@{self.first}..{self.last}"

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass
class ReplayReport:
    replayed: int = 0
    failed: list[ReplayFailure] = field(default_factory=list)
    uncommitted: list[Uncommitted] = field(default_factory=list)
    """Replayed but not committed (see :class:`Uncommitted`): these may be replayed twice."""
    over_limit: list[ReplayFailure] = field(default_factory=list)
    """Not sent: replayed :attr:`Selection.max_replays` times already (committed past, as
    refused ones are)."""
    left: Counter[str] = field(default_factory=Counter)
    """A plain replay: the dead letters of :data:`PERMANENT_ERROR_CLASSES` it passed over,
    by class (each counted by the first plain replay that meets it); a replay naming
    their class sends them."""


class _Group(ConsumerRebalanceListener):  # type: ignore[misc]
    """The replay's view of its group membership, kept in step by aiokafka's rebalance
    callbacks (which run in the consumer's coordinator task, at the replay's awaits).

    aiokafka restarts every assigned partition from its committed offset at each
    assignment, and never returns a record fetched under an earlier one: entries drained
    before the latest assignment (``assignments`` counts them) are stale and dropped
    unsent, they are fetched again, by this replay or by the member that got the
    partition. ``lock`` is held by the replay from the moment it sends a chunk until the
    chunk is committed, and by :meth:`on_partitions_revoked`: the replay's partitions are
    let go (it rejoins the group) only after what was sent from them is committed, so
    whoever gets one next starts right after those records."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.assignments = 0
        self.settled = False
        """Assigned, and not being revoked."""

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.lock:  # the chunk being sent is committed first
            self.settled = False

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.assignments += 1
        self.settled = True


async def _take_ends(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int], tps: Iterable[TopicPartition]) -> None:
    """Add to ``end`` the current end offsets of the partitions in ``tps`` it lacks, and
    of every other partition of their topics it lacks: the first time a replay sees an
    assignment it takes every partition's end, so that one assigned later (moved from
    another member) stops where the DLQ ended when this replay started."""
    missing = {tp for tp in tps if tp not in end}
    for t in {tp.topic for tp in missing}:
        missing |= {TopicPartition(t, p) for p in consumer.partitions_for_topic(t) or ()} - end.keys()
    if missing:
        end.update(await consumer.end_offsets(sorted(missing)))


async def _drain(
    consumer: AIOKafkaConsumer,
    limit: int,
    end: dict[TopicPartition, int] | None = None,
    group: _Group | None = None,
    max_bytes: int | None = None,
) -> list[DlqEntry]:
    """Up to ``limit`` entries, stopping at ``end`` (default: the partitions' current ends).
    A record at or past its partition's end is skipped and the partition paused, so what
    arrives meanwhile is left for later (the caller commits explicit offsets). With
    ``max_bytes``, no more entries than fit in it (keys and values; at least one): the
    consumer is moved back to the first record fetched but not taken, in each partition.

    With ``group`` (a subscribed consumer) the assignment may change at any await: a
    partition ``end`` lacks (assigned after the replay started, or created since) gets
    its end offset when it is first seen (:func:`_take_ends`), a revoked one is no longer
    looked at, nothing counts as done while a rebalance is under way, and what was drained
    before a new assignment is dropped: what it returns was all fetched in the assignment
    ``group.assignments`` counts when it returns."""
    out: list[DlqEntry] = []
    size = 0
    if end is None:
        end = await consumer.end_offsets(list(consumer.assignment()))
    gen = group.assignments if group is not None else 0

    def reassigned() -> bool:
        nonlocal gen, size
        if group is None or group.assignments == gen:
            return False
        out.clear()  # fetched again from the committed offsets
        size = 0
        gen = group.assignments
        return True

    while len(out) < limit:
        reassigned()
        if group is None or group.settled:
            assigned = consumer.assignment()
            await _take_ends(consumer, end, assigned)
            done = True
            for tp in assigned:
                try:
                    if await consumer.position(tp) < end[tp]:
                        done = False
                    elif tp not in consumer.paused():
                        consumer.pause(tp)
                except IllegalStateError:  # revoked meanwhile
                    done = False
            if done and (group is None or (group.settled and not reassigned())):
                break
        batch = await consumer.getmany(timeout_ms=500, max_records=min(500, limit - len(out)))
        reassigned()  # the batch is of the current assignment (aiokafka drops older records)
        await _take_ends(consumer, end, batch)
        if reassigned():
            continue  # reassigned while the ends were read: the batch is stale too
        full = False
        for tp, records in batch.items():
            for r in records:
                if r.offset >= end[tp]:
                    consumer.pause(tp)
                    break
                n = len(r.value or b"") + len(r.key or b"")
                if full or (max_bytes is not None and out and size + n > max_bytes):
                    full = True
                    _rewind(consumer, tp, r.offset)  # fetched again by the next call
                    break
                size += n
                out.append(_entry(r))
        if full:
            break
    return out[:limit]


def _entry(r: ConsumerRecord[bytes, bytes]) -> DlqEntry:
    headers = list(r.headers or ())
    try:
        meta: DeadLetter | None = parse_dlq_headers(headers)
    except ValueError:
        meta = None
    ts = original_timestamp(headers)
    return DlqEntry(
        r.partition,
        r.offset,
        r.key,
        r.value,
        meta,
        headers,
        ts if ts is not None else r.timestamp,
        replay_count(headers),
    )


def _rewind(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
    """Move ``tp``'s position back to ``offset`` (what was fetched from there is dropped);
    nothing when ``tp`` was revoked meanwhile (its next owner starts from the commit)."""
    try:
        consumer.seek(tp, offset)
    except IllegalStateError:
        pass


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
                e.meta.original_topic if e.meta else self._topic, e.value, key=e.key, headers=replay_headers(e)
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
        return self.not_replayed(e, type(exc).__name__, f"{exc} ({size:,} bytes)")

    def not_replayed(self, e: DlqEntry, error_class: str, reason: str) -> ReplayFailure:
        failure = ReplayFailure(
            Topics.dlq(self._topic),
            e.partition,
            e.offset,
            f"{e.meta.original_topic}[{e.meta.partition}]@{e.meta.offset}" if e.meta else None,
            error_class,
            reason,
        )
        log.warning(
            "dlq replay: %s not replayed (left in the DLQ): %s: %s", failure.place, failure.error_class, failure.reason
        )
        return failure


def replay_headers(e: DlqEntry) -> list[tuple[str, bytes]]:
    """The original headers, the original's timestamp (the replayed record is written with
    the current time, see :data:`~shared.kafka.dlq.TIMESTAMP_HEADER`), the replay count
    and the original's place (:data:`~shared.kafka.dlq.ORIGIN_HEADER`: the dead letter's,
    else, for one written before that header, the place it failed at)."""
    headers = original_headers(e.headers)
    if e.timestamp_ms is not None:
        headers.append((TIMESTAMP_HEADER, str(e.timestamp_ms).encode()))
    headers.append((REPLAYS_HEADER, str(e.replays + 1).encode()))
    if e.meta is not None:
        origin = record_origin(e.meta.original_topic, e.meta.partition, e.meta.offset, e.headers, e.value)
        headers.append((ORIGIN_HEADER, format_origin(origin, e.value)))
    return headers


def _replay_consumer(settings: KafkaSettings, group_id: str) -> AIOKafkaConsumer:
    """A consumer in ``group_id`` (see :func:`_lanes`) as
    :func:`~shared.kafka.clients.make_consumer` makes them (manual commits, read-committed),
    with :data:`REBALANCE_TIMEOUT_MS`; not yet subscribed."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id_prefix}-dlq-replay",
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        request_timeout_ms=settings.request_timeout_ms,
        rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
    )


@dataclass(frozen=True)
class _Lane:
    """A replay group, and the error classes (``None``: no metadata) whose dead letters it sends."""

    group: str
    takes: Callable[[str | None], bool]
    plain: bool


def _lanes(select: Selection) -> list[_Lane]:
    """A plain replay goes through the DLQ in group :data:`REPLAY_GROUP`; one that names
    classes goes through it once per class, in group ``<REPLAY_GROUP>.<class>``. Each named
    class has its own position: a plain replay that passes over a permanent class leaves
    it reachable, and a replay of one class never passes over another's dead letters. (A
    class that a plain replay also takes may so be sent once by each; the aggregator's
    ledger counts an event once: a raw record sent without an id keeps the position id of
    its first place, which replays carry in ``tw.origin``.)"""
    if not select.error_classes:
        return [_Lane(REPLAY_GROUP, lambda c: c not in PERMANENT_ERROR_CLASSES, plain=True)]
    return [_Lane(f"{REPLAY_GROUP}.{c}", partial(operator.eq, c), plain=False) for c in sorted(select.error_classes)]


def _pick(entries: list[DlqEntry], lane: _Lane, select: Selection) -> tuple[list[DlqEntry], list[DlqEntry]]:
    """Of ``entries``, those ``lane`` sends, and those it would but for the replay limit."""
    send: list[DlqEntry] = []
    over: list[DlqEntry] = []
    for e in entries:
        if lane.takes(e.error_class):
            (send if select.force or e.replays < select.max_replays else over).append(e)
    return send, over


async def replay_report(
    settings: KafkaSettings, topic: str, limit: int = 1_000_000, select: Selection | None = None
) -> ReplayReport:
    """Re-inject dead letters into their original topic, written with the current time
    (the original's travels in ``tw.timestamp``), ``REPLAY_CHUNK`` at a time (fewer when
    they pass :data:`REPLAY_CHUNK_BYTES`): each chunk is
    produced (acknowledged) and then committed in the replay's group, so memory stays
    bounded, a second replay does not repeat the first, and an interrupted one repeats at
    most a chunk. Only what was in the DLQ when the replay started is replayed (records
    that fail again and return, or any dead-lettered meanwhile, are left for the next):
    each partition's end offset is taken when the replay first has an assignment, for
    every partition of the DLQ, and for a partition created later when it is first
    assigned.

    What is sent (``select``): a plain replay sends every dead letter but those of
    :data:`PERMANENT_ERROR_CLASSES` (counted in :attr:`ReplayReport.left`), in group
    ``tonewatch-dlq-replay``; naming classes sends only those, each class from its own
    position (:func:`_lanes`). Each replayed record carries ``tw.replays`` (one more than
    its dead letter's), which its next dead letter keeps: one replayed
    :attr:`Selection.max_replays` times is not sent unless forced, but listed in
    :attr:`ReplayReport.over_limit` and committed past, as a refused one is
    (:func:`replay_places` sends one by its place). ``limit`` counts the dead letters the
    replay takes (sent, refused, or over the replay limit), not those of other classes it
    passes over (:func:`_up_to_limit`).

    A record the original topic refuses for good (too large for its ``max.message.bytes``,
    say) is reported in :attr:`ReplayReport.failed` with its DLQ partition and offset, and
    the replay goes on and commits past it: it stays in the DLQ (``tonewatch dlq list``
    shows it) but a later replay does not retry it. Any other error (the broker down, the
    topic missing or not writable) stops the replay without committing the chunk.

    Rebalances. The replay is one member of its group: a second replay of the same DLQ (or
    any other member joining or leaving) moves partitions between them mid-replay. Each
    replay replays the partitions it is assigned at the time, until their ends, and ends
    when all of them are done (a partition it loses is finished by the member that gets
    it; one it gains is replayed too). A partition is let go only after the chunk being
    sent from it is acknowledged and committed (the rebalance waits, up to
    :data:`REBALANCE_TIMEOUT_MS`), and what was fetched but not sent is dropped, so the
    next owner starts right after what was replayed: two replays at once replay each dead
    letter once between them. Should a commit still fail because the group gave the
    partition away meanwhile (this replay was too slow to rejoin, or lost its session),
    the records are listed in :attr:`ReplayReport.uncommitted` (another replay may send
    them again) and the replay goes on; if this replay gets the partition back, it commits
    them then without sending them again (no record is sent twice by one replay) and the
    listing is dropped."""
    select = select or Selection()
    report = ReplayReport()
    done = 0
    for lane in _lanes(select):
        if done >= limit:
            break
        done += await _replay_lane(settings, topic, lane, select, limit - done, report)
    return report


async def _replay_lane(
    settings: KafkaSettings, topic: str, lane: _Lane, select: Selection, limit: int, report: ReplayReport
) -> int:
    """:func:`replay_report` in one lane's group, adding to ``report``; returns how many
    dead letters it took (``limit`` at most: see :func:`_up_to_limit`)."""
    dlq = Topics.dlq(topic)
    consumer = _replay_consumer(settings, lane.group)
    group = _Group()
    consumer.subscribe([dlq], listener=group)
    replayer = _Replayer(settings, topic)
    end: dict[TopicPartition, int] = {}
    sent: dict[TopicPartition, int] = {}  # next offset after what this replay sent (or had refused)
    uncommitted: dict[TopicPartition, Uncommitted] = {}
    done = 0
    await consumer.start()
    try:
        await replayer.start()
        while done < limit:
            entries = await _drain(consumer, REPLAY_CHUNK, end, group, REPLAY_CHUNK_BYTES)
            fetched_in = group.assignments
            async with group.lock:
                if group.assignments != fetched_in or not group.settled:
                    continue  # being reassigned: fetched again from the committed offsets
                if not entries:
                    break
                entries = _up_to_limit(entries, dlq, sent, lane, limit - done)
                fresh = [e for e in entries if e.offset >= sent.get(TopicPartition(dlq, e.partition), 0)]
                send, over = _pick(fresh, lane, select)
                failed = await replayer.send_chunk(send)
                offsets: dict[TopicPartition, int] = {}
                for e in entries:
                    tp = TopicPartition(dlq, e.partition)
                    offsets[tp] = max(offsets.get(tp, 0), e.offset + 1)
                for tp, offset in offsets.items():
                    sent[tp] = max(sent.get(tp, 0), offset)
                report.failed += failed
                report.replayed += len(send) - len(failed)
                report.over_limit += [
                    replayer.not_replayed(
                        e, e.error_class or "?", f"replayed {e.replays} times already (limit {select.max_replays})"
                    )
                    for e in over
                ]
                if lane.plain:
                    report.left.update(e.error_class for e in fresh if e.error_class in PERMANENT_ERROR_CLASSES)
                done += len(send) + len(over)
                try:
                    await consumer.commit(offsets)
                except (CommitFailedError, IllegalStateError) as exc:
                    _not_committed(dlq, entries, exc, uncommitted)
                else:
                    _committed(dlq, entries, offsets, uncommitted)
        report.uncommitted += sorted(uncommitted.values(), key=lambda u: u.partition)
        return done
    finally:
        await consumer.stop()
        await replayer.stop()


def _up_to_limit(
    entries: list[DlqEntry], dlq: str, sent: dict[TopicPartition, int], lane: _Lane, limit: int
) -> list[DlqEntry]:
    """``entries`` up to the ``limit``-th that ``lane`` takes (sent, refused by the topic, or
    over the replay limit: each replayed or listed) and this replay has not sent yet. A dead
    letter of another class is passed over (committed past in the lane's group) and not
    counted: counting it, ``--error-class E --limit 3`` behind three others replayed none.
    The entries after the cut are not committed, so a later replay starts with them; in each
    partition they follow those kept (a drain returns a partition's records in order)."""
    taken = 0
    for i, e in enumerate(entries):
        if e.offset >= sent.get(TopicPartition(dlq, e.partition), 0) and lane.takes(e.error_class):
            taken += 1
            if taken >= limit:
                return entries[: i + 1]
    return entries


def _committed(
    dlq: str, entries: list[DlqEntry], offsets: dict[TopicPartition, int], out: dict[TopicPartition, Uncommitted]
) -> None:
    """A commit went through: records listed as not committed are no longer at risk if
    this replay went over them again itself (its chunk started at or before them: no
    other member committed past them meanwhile, so none replayed them)."""
    for tp, offset in offsets.items():
        u = out.get(tp)
        if u is None or min(e.offset for e in entries if e.partition == tp.partition) > u.first:
            continue
        if offset > u.last:
            del out[tp]
        else:
            out[tp] = Uncommitted(dlq, u.partition, offset, u.last, u.reason)


def _not_committed(dlq: str, entries: list[DlqEntry], exc: Exception, out: dict[TopicPartition, Uncommitted]) -> None:
    """A commit failed because the group moved on: list what the chunk replayed, per partition."""
    reason = f"{type(exc).__name__}: {exc}"
    for p in sorted({e.partition for e in entries}):
        offsets = [e.offset for e in entries if e.partition == p]
        tp = TopicPartition(dlq, p)
        before = out.get(tp)
        first = min(offsets) if before is None else min(before.first, *offsets)
        out[tp] = Uncommitted(dlq, p, first, max(offsets) if before is None else max(before.last, *offsets), reason)
        log.warning(
            "dlq replay: %s replayed but not committed (another replay may send them again): %s",
            out[tp].place,
            reason,
        )


async def replay_places(
    settings: KafkaSettings, topic: str, places: Iterable[tuple[int, int]], select: Selection | None = None
) -> ReplayReport:
    """Re-inject the dead letters at ``places`` ((partition, offset) of ``topic``'s DLQ),
    whatever their class, and whatever any replay group committed: the way to send one
    that a replay passed over (listed as over the replay limit, or refused by the topic
    before its limit was raised). Nothing is committed, so each call sends them again. One
    replayed :attr:`Selection.max_replays` times is sent only when forced (else listed in
    :attr:`ReplayReport.over_limit`); a place with no dead letter (a partition or offset
    the DLQ does not have, deleted by retention) is listed in :attr:`ReplayReport.failed`
    as ``NotFound``."""
    select = select or Selection()
    report = ReplayReport()
    dlq = Topics.dlq(topic)
    wanted = sorted(set(places))
    replayer = _Replayer(settings, topic)
    tps = await _partitions(settings, dlq)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        entries: list[DlqEntry] = []
        begins: dict[TopicPartition, int] = {}
        ends: dict[TopicPartition, int] = {}
        if tps:
            consumer.assign(tps)
            begins = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
        for partition, offset in wanted:
            tp = TopicPartition(dlq, partition)
            found = None
            if tp in begins and begins[tp] <= offset < ends[tp]:
                found = await _read_at(consumer, tp, offset, ends[tp])
            if found is None:
                report.failed.append(
                    ReplayFailure(
                        dlq, partition, offset, None, NOT_FOUND, f"no dead letter at {dlq}[{partition}]@{offset}"
                    )
                )
            else:
                entries.append(found)
        send = [e for e in entries if select.force or e.replays < select.max_replays]
        over = [e for e in entries if not (select.force or e.replays < select.max_replays)]
        await replayer.start()
        failed = await replayer.send_chunk(send)
        report.failed += failed
        report.replayed += len(send) - len(failed)
        report.over_limit += [
            replayer.not_replayed(
                e, e.error_class or "?", f"replayed {e.replays} times already (limit {select.max_replays})"
            )
            for e in over
        ]
    finally:
        await consumer.stop()
        await replayer.stop()
    return report


async def _read_at(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, end: int) -> DlqEntry | None:
    """The dead letter at ``tp``'s ``offset``; None when there is none (a compacted or
    aborted record's offset)."""
    consumer.seek(tp, offset)
    while await consumer.position(tp) < end:
        batch = await consumer.getmany(tp, timeout_ms=1_000, max_records=1)
        for r in batch.get(tp, []):
            return _entry(r) if r.offset == offset else None
    return None


async def replay(settings: KafkaSettings, topic: str, limit: int = 1_000_000, select: Selection | None = None) -> int:
    """:func:`replay_report`, returning how many records were re-injected (the refused
    ones are logged; :func:`replay_report` lists them)."""
    return (await replay_report(settings, topic, limit, select)).replayed
