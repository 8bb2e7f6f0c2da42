"""Replay records into the raw topics, paced by ``rate`` (events per second) or by
``speedup`` (original event-time gaps divided by X, event times moved to now).

With ``speedup``, ``backfill_s`` starts the moved timeline that many seconds in the
past: the events that land before now are sent at once (history for the trends and
the alert baselines), the rest in real time.

With ``rate`` or no pacing the input is streamed (memory stays flat however long the
file); ``speedup`` reads it all first, to order it by event time.

A line whose id an earlier line of the same input had is rejected: the pipeline keeps one
event per id, so it would be dropped downstream while ingest counted it as produced. The
ids given in the input are kept in memory for this (about 110 bytes and the id's length
each: 130 MB for a million 20-character ids); derived ids differ by line and are not kept."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from services.ingest.produce import RETRY_ALONE, line_id, prepare, produce, send_each
from services.ingest.sources import Line, PipeLines
from shared.events import EARLIEST_TIME, LATEST_TIME, InvalidEvent, RawEvent, Stream
from shared.kafka.produce import REFUSED, REFUSED_SIZE
from shared.topics import Topics

MAX_ID_CHARS = 128
"""An event id's longest length (``shared.events.EventId``)."""
MAX_REJECTIONS_KEPT = 1_000
"""Rejected lines whose number and reason a report keeps; the rest are only counted."""
MAX_REASON_CHARS = 300
"""Characters of a rejection's reason kept: a report holds at most 300,000 of them."""
MIN_RATE = 1 / 3600
"""Slowest ``--rate``: one event an hour."""
MIN_SPEEDUP = 0.001
"""Slowest ``--speedup``: an hour of the original timeline takes some 42 days."""
MAX_BACKFILL_S = 100 * 365.25 * 86_400
"""Longest ``--backfill``: a century (the contract's times start in 1900)."""


@dataclass
class ReplayReport:
    produced: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """(line number, reason) of the first :data:`MAX_REJECTIONS_KEPT` rejected lines."""
    rejected_total: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    """(line number, reason) of the first :data:`MAX_REJECTIONS_KEPT` lines skipped though
    nothing is wrong with them (a CSV header repeated by files joined with cat): not sent,
    and not rejected."""
    skipped_total: int = 0
    run: int | None = None
    """The stamp of the run's ids (``id@run``), if they have one: passed again
    (``--run``), it resumes a replay cut short without counting an event twice."""

    def reject(self, line: int, reason: str) -> None:
        self.rejected_total += 1
        if len(self.rejected) < MAX_REJECTIONS_KEPT:
            if len(reason) > MAX_REASON_CHARS:
                reason = reason[: MAX_REASON_CHARS - 1] + "…"
            self.rejected.append((line, reason))

    def skip(self, line: int, reason: str) -> None:
        self.skipped_total += 1
        if len(self.skipped) < MAX_REJECTIONS_KEPT:
            self.skipped.append((line, reason[:MAX_REASON_CHARS]))


@dataclass(frozen=True)
class Pacing:
    rate: float | None = None
    speedup: float | None = None
    backfill_s: float = 0.0

    def __post_init__(self) -> None:
        if self.rate is not None and self.speedup is not None:
            raise ValueError("use either --rate or --speedup, not both")
        for option, value in (("--rate", self.rate), ("--speedup", self.speedup), ("--backfill", self.backfill_s)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{option} must be a finite number, not {value}")
        if (self.rate is not None and self.rate <= 0) or (self.speedup is not None and self.speedup <= 0):
            raise ValueError("--rate and --speedup must be positive")
        if self.rate is not None and self.rate < MIN_RATE:
            raise ValueError(f"--rate must be at least {MIN_RATE:.6f} (one event an hour)")
        if self.speedup is not None and self.speedup < MIN_SPEEDUP:
            raise ValueError(f"--speedup must be at least {MIN_SPEEDUP}")
        if self.backfill_s < 0:
            raise ValueError("--backfill must not be negative")
        if self.backfill_s > MAX_BACKFILL_S:
            raise ValueError(f"--backfill must be at most {MAX_BACKFILL_S:,.0f} seconds (a century)")
        if self.backfill_s and self.speedup is None:
            raise ValueError("--backfill needs --speedup (it moves the replayed timeline into the past)")


EARLIEST_RUN = datetime(2000, 1, 1, tzinfo=UTC)
"""No replay started before this: an earlier ``--run`` is no stamp (a time in seconds, say)."""
RUN_AHEAD = timedelta(days=1)
"""How far past now a ``--run`` may be (another machine's clock may be ahead): later is no stamp."""


def run_stamp(now: datetime) -> int:
    """A replay run's stamp: its start in Unix milliseconds."""
    return int(now.timestamp() * 1000)


def check_run(run: int, now: datetime) -> None:
    """``ValueError`` for a ``--run`` that no replay can have printed: not a time in Unix
    milliseconds from :data:`EARLIEST_RUN` to :data:`RUN_AHEAD` after ``now``."""
    earliest, latest = run_stamp(EARLIEST_RUN), run_stamp(now + RUN_AHEAD)
    if earliest <= run <= latest:
        return
    shown = str(run) if len(str(run)) <= 20 else f"{str(run)[:20]}…"
    hint = " (a time in seconds? a stamp is in milliseconds)" if earliest <= run * 1000 <= latest else ""
    raise ValueError(
        f"--run {shown} is not a run stamp{hint}: a stamp is the start of a --speedup replay in Unix "
        f"milliseconds ({earliest} to {latest}, a day from now), printed by that replay when it starts "
        '("run STAMP: ids are stamped id@STAMP") and in its report'
    )


def run_id(event_id: str, run: int) -> str:
    """``{event_id}@{run}``, the id of an event in the replay run ``run``. Within the
    ``EventId`` contract (at most 128 printable characters, see ``shared.events``): a longer original id
    is cut and a digest of it added, so distinct ids stay distinct."""
    suffix = f"@{run}"
    if len(event_id) + len(suffix) <= MAX_ID_CHARS:
        return event_id + suffix
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:32]
    return f"{event_id[: MAX_ID_CHARS - len(suffix) - len(digest) - 1]}.{digest}{suffix}"


def _retime(
    events: Sequence[RawEvent],
    speedup: float,
    now: datetime,
    backfill_s: float = 0.0,
    *,
    numbers: Sequence[int] | None = None,
    report: ReplayReport | None = None,
) -> list[tuple[float, RawEvent]]:
    """(send offset in seconds from now, event with event_time moved to now + that offset).

    The first event lands ``backfill_s`` before ``now``; events that land in the past
    get send offset 0 (sent at once) and keep their past event time. An event moved out
    of the contract's years is left out, rejected in ``report`` by its line
    (``numbers[i]`` for ``events[i]``)."""
    return [(offset, e) for offset, _, e in _retime_numbered(events, speedup, now, backfill_s, numbers, report)]


def _retime_numbered(
    events: Sequence[RawEvent],
    speedup: float,
    now: datetime,
    backfill_s: float,
    numbers: Sequence[int] | None,
    report: ReplayReport | None,
) -> list[tuple[float, int, RawEvent]]:
    """:func:`_retime`, with each event's line number (``numbers[i]``, else ``i + 1``)."""
    if not events:
        return []
    t0 = min(e.event_time for e in events)
    start = now.timestamp() - backfill_s
    out = []
    for i in sorted(range(len(events)), key=lambda i: events[i].event_time):
        e = events[i]
        number = numbers[i] if numbers else i + 1
        offset = (e.event_time - t0).total_seconds() / speedup
        if reason := _out_of_range(start + offset):
            if report is not None:
                report.reject(number, reason)
            continue
        moved = datetime.fromtimestamp(start + offset, tz=UTC)
        out.append((max(0.0, offset - backfill_s), number, e.model_copy(update={"event_time": moved})))
    return out


def _out_of_range(timestamp: float) -> str | None:
    if EARLIEST_TIME.timestamp() <= timestamp < LATEST_TIME.timestamp():
        return None
    edge = f"before {EARLIEST_TIME.year}" if timestamp < EARLIEST_TIME.timestamp() else f"after {LATEST_TIME.year - 1}"
    return (
        f"event_time: moved to {edge} by --speedup/--backfill, outside the years "
        f"{EARLIEST_TIME.year}-{LATEST_TIME.year - 1} an event may have; not sent"
    )


NO_EVENT_TIME = (
    "event_time: --speedup needs each line's event_time when other lines have one (it replays "
    "the gaps between them; this line, stamped now, would wait until the replay reached now); not sent"
)
"""Why a line without an event time is rejected by a retimed replay of lines that have one."""


def _untimed(data: dict[str, Any]) -> bool:
    """Whether :func:`prepare` stamps the line's event time (now): it gives none."""
    return data.get("event_time") in (None, "")


def _prepared(
    lines: Iterable[Line],
    stream: Stream,
    report: ReplayReport,
    origin: str,
    untimed: set[int] | None = None,
    first_line: dict[str, int] | None = None,
) -> Iterator[tuple[int, RawEvent]]:
    """(line number, valid event), one at a time (a line without an id gets :func:`line_id`'s);
    unreadable and invalid lines, and lines repeating an earlier line's id, go to the report,
    as do the skipped lines (a repeated CSV header). ``untimed`` gets the numbers of the
    lines yielded whose event time was stamped now (see :func:`_timed_only`). ``first_line``
    (the first line of each given id) is shared by calls on the batches of one input."""
    first_line = {} if first_line is None else first_line  # given ids only: derived ones differ by line number
    for line in lines:
        if line.skipped is not None:
            report.skip(line.number, line.skipped)
            continue
        if line.data is None:
            report.reject(line.number, line.error or "unreadable")
            continue
        try:
            event = prepare(line.data, stream, id_if_missing=functools.partial(line_id, origin, line.number, line.data))
        except InvalidEvent as exc:
            report.reject(line.number, exc.reason)
            continue
        except RecursionError:  # nested nearly as deep as the reader allows: deriving its id goes deeper
            report.reject(line.number, "malformed JSON: nested too deeply")
            continue
        if line.data.get("id") not in (None, ""):
            first = first_line.setdefault(event.id, line.number)
            if first != line.number:
                report.reject(
                    line.number, f"id: line {first} has the same id (the pipeline keeps one event per id); not sent"
                )
                continue
        if untimed is not None and _untimed(line.data):
            untimed.add(line.number)
        yield line.number, event


def _timed_only(
    numbers: list[int], events: list[RawEvent], untimed: set[int], report: ReplayReport
) -> tuple[list[int], list[RawEvent]]:
    """The lines of a ``--speedup`` replay that can be retimed. A line without an event
    time was stamped now, years perhaps after the others' times: retimed by its gap from
    the earliest, it would be sent that gap divided by the speedup later, the lines after
    it waiting too (three 2020 lines, the middle one timeless, took hours at 86400). When
    other lines give a time such lines are rejected by their number; when none does, all
    are stamped now alike and sent at once, as before."""
    if not untimed or len(untimed) == len(numbers):
        return numbers, events
    kept = [i for i, n in enumerate(numbers) if n not in untimed]
    for n in sorted(untimed):
        report.reject(n, NO_EVENT_TIME)
    return [numbers[i] for i in kept], [events[i] for i in kept]


def _renamed(events: Iterable[tuple[int, RawEvent]], run: int) -> Iterator[tuple[int, RawEvent]]:
    for n, e in events:
        yield n, e.model_copy(update={"id": run_id(e.id, run)})


Renew = Callable[[AIOKafkaProducer], Awaitable[AIOKafkaProducer]]
"""Stops the producer it is given and returns a new one, started (see :class:`_Sender`)."""


class _Sender:
    """Sends chunks of (line number, event) and counts what Kafka acknowledged.

    A record the topic refuses (:data:`~shared.kafka.produce.REFUSED`: larger than its
    ``max.message.bytes``, say) is its line's rejection, and the rest is still sent. The
    broker refuses a whole batch, so the records batched with it were refused too, and the
    refusal leaves a gap in the idempotent producer's sequence of that partition (every later
    record there is refused as ``OutOfOrderSequenceNumber``): the producer is renewed (a new
    producer id starts afresh) and each record not acknowledged is sent again alone. Any
    other error (the broker unreachable, the topic missing) is raised, as is a refusal when
    there is no ``renew``."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topics: Topics,
        report: ReplayReport,
        progress: Callable[[int], Any] | None,
        renew: Renew | None,
    ) -> None:
        self.producer = producer
        self._topics = topics
        self._report = report
        self._progress = progress
        self._renew = renew

    def _count(self, n: int) -> None:
        self._report.produced += n
        if self._progress and n:
            self._progress(n)

    async def send(self, batch: Sequence[tuple[int, RawEvent]]) -> None:
        sent: list[asyncio.Future[Any]] = []
        await send_each(self.producer, self._topics, [e for _, e in batch], sent)
        errors = [f.exception() for f in sent]
        failed = [item for item, exc in zip(batch, errors, strict=False) if exc is not None] + list(batch[len(sent) :])
        if not failed:
            self._count(len(batch))
            return
        refused = [exc for exc in errors if isinstance(exc, REFUSED)]
        if (
            self._renew is None
            or not refused
            or any(exc is not None and not isinstance(exc, RETRY_ALONE) for exc in errors)
        ):
            raise next(exc for exc in errors if exc is not None)
        self._count(len(batch) - len(failed))
        self.producer = await self._renew(self.producer)
        for number, event in failed:
            try:
                await produce(self.producer, self._topics, [event])
            except REFUSED as exc:
                self._report.reject(number, self._refusal(event, exc))
                self.producer = await self._renew(self.producer)
            else:
                self._count(1)

    def _refusal(self, event: RawEvent, exc: Exception) -> str:
        size = len(event.to_bytes())
        why = " (over the topic's max.message.bytes?)" if isinstance(exc, REFUSED_SIZE) else ""
        return f"refused by {self._topics.raw(event.stream)}: {type(exc).__name__}: {size:,} bytes{why}; not sent"


HANDOFF_CHUNKS = 4
"""Chunks of lines a live input's reader thread may hold, read but not yet taken."""


class _Handoff:
    """The lines of a live input (a pipe), read by a daemon thread and taken by the event
    loop: a read that waits for the pipe's writer blocks neither the loop (the producer's
    background tasks, the pending lines' timer) nor the lines read before it. At most
    ``limit`` lines are held (the thread waits for the loop to take them); the thread wakes
    the loop only when it waits for lines, so a fast pipe costs a lock per line, not a
    wake-up. An error of the read is raised by :meth:`take`, with its traceback."""

    def __init__(self, lines: Iterable[Line], limit: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Condition(threading.Lock())
        self._lines: deque[Line] = deque()
        self._limit = max(1, limit)
        self._done = False
        self._stopped = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        # a daemon: on Ctrl-C it may be blocked in a read for ever, and must not hold the exit
        self._thread = threading.Thread(target=self._read, args=(lines,), name="ingest-reader", daemon=True)
        self._thread.start()

    def _read(self, lines: Iterable[Line]) -> None:
        try:
            for line in lines:
                with self._lock:
                    while len(self._lines) >= self._limit and not self._stopped:
                        self._lock.wait()
                    if self._stopped:
                        return
                    self._lines.append(line)
                    self._wake()
        except BaseException as exc:  # noqa: BLE001 - raised in the loop, by take
            with self._lock:
                self._error = exc
        finally:
            with self._lock:
                self._done = True
                self._wake()
            close = getattr(lines, "close", None)
            if close is not None:  # the pipe, closed by the thread that reads it
                close()

    def _wake(self) -> None:
        """Resolve the loop's waiter, if it waits (called with the lock held)."""
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            try:
                self._loop.call_soon_threadsafe(_resolve, waiter)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    async def take(self, within: float | None = None) -> list[Line] | None:
        """The lines read since the last take, once there is one; ``[]`` when none came
        within ``within`` seconds, ``None`` at the input's end."""
        with self._lock:
            waiter = None
            if not self._lines and not self._done:
                waiter = self._waiter = self._loop.create_future()
        if waiter is not None:
            try:
                await asyncio.wait({waiter}, timeout=within)
            finally:
                with self._lock:
                    self._waiter = None
        with self._lock:
            taken = list(self._lines)
            self._lines.clear()
            self._lock.notify_all()
            if taken:
                return taken
            if self._error is not None:
                raise self._error
            return None if self._done else []

    def stop(self) -> None:
        """Let the thread go: it stops at its next line (a read it is blocked in is left to
        end, or to the process's exit)."""
        with self._lock:
            self._stopped = True
            self._lock.notify_all()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _read_all(lines: Iterable[Line]) -> list[Line]:
    """All the lines of a live input, read in a thread (``--speedup`` orders them first)."""
    handoff = _Handoff(lines, 10_000)
    read: list[Line] = []
    try:
        while (taken := await handoff.take()) is not None:
            read += taken
    finally:
        handoff.stop()
    return read


async def replay(
    producer: AIOKafkaProducer,
    topics: Topics,
    lines: Iterable[Line],
    stream: Stream,
    pacing: Pacing,
    *,
    origin: str,
    progress: Callable[[int], Any] | None = None,
    chunk: int = 200,
    run: int | None = None,
    renew: Renew | None = None,
    live: bool | None = None,
    within_s: float = 0.5,
) -> ReplayReport:
    """Produce the valid lines, paced. A line without an id gets one derived from
    ``origin`` (the source's name), its number and its content, the same in every run.
    Events get :func:`run_id` ids of ``run`` when it is given, and of this run's start
    with ``speedup`` (which moves event times); the report says which (``run``).

    With ``renew``, a record the topic refuses is rejected by its line and the rest is
    sent (:class:`_Sender`); without it the refusal is raised.

    ``live`` (by default: ``lines`` is a pipe's, :class:`~services.ingest.sources.PipeLines`):
    a read may wait for the writer (``tail -f``). The lines are then read in a thread
    (:class:`_Handoff`) and a line waits at most ``within_s`` seconds to be sent, not for
    ``chunk`` lines: a feed of a line a second reached Kafka every 200 seconds, and the
    blocked read stopped the event loop. A regular file is read in the loop, in chunks."""
    if live is None:
        live = isinstance(lines, PipeLines)
    now = datetime.now(UTC)
    if run is None and pacing.speedup is not None:
        run = run_stamp(now)
    report = ReplayReport(run=run)
    # Lines without an event time are stamped when they are prepared; a paced one is stamped
    # again when it is due (``stamp``), not an interval early. Prepared lazily, one line ahead,
    # so ``untimed`` holds at most a line or two here (all of them for --speedup).
    untimed: set[int] = set()

    def stamp(number: int, event: RawEvent) -> RawEvent:
        if number not in untimed:
            return event
        untimed.discard(number)
        return event.model_copy(update={"event_time": datetime.now(UTC)})

    if live and pacing.speedup is None:
        sender = _Sender(producer, topics, report, progress, renew)
        first_line: dict[str, int] = {}

        def prepared(batch: list[Line]) -> Iterator[tuple[int, RawEvent]]:
            events = _prepared(batch, stream, report, origin, untimed, first_line)
            return events if run is None else _renamed(events, run)

        await _send_live(_Handoff(lines, HANDOFF_CHUNKS * chunk), prepared, sender, pacing.rate, chunk, within_s, stamp)
        return report
    if live:
        lines = await _read_all(lines)
    events = _prepared(lines, stream, report, origin, untimed)
    if run is not None:
        events = _renamed(events, run)
    schedule: Iterable[tuple[float, int, RawEvent]]
    if pacing.speedup is not None:
        numbers: list[int] = []
        read: list[RawEvent] = []
        for n, e in events:
            numbers.append(n)
            read.append(e)
        numbers, read = _timed_only(numbers, read, untimed, report)
        untimed.clear()  # retimed by the schedule, or all stamped alike (a file with no times)
        schedule = _retime_numbered(read, pacing.speedup, now, pacing.backfill_s, numbers, report)
    elif pacing.rate is not None:
        rate = pacing.rate
        schedule = ((i / rate, n, e) for i, (n, e) in enumerate(events))
    else:
        schedule = ((0.0, n, e) for n, e in events)
    sender = _Sender(producer, topics, report, progress, renew)
    start = time.monotonic()
    pending: list[tuple[int, RawEvent]] = []
    for offset, number, event in schedule:
        wait = start + offset - time.monotonic()
        if wait > 0.01 and pending:
            await sender.send(pending)
            pending = []
            wait = start + offset - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        pending.append((number, stamp(number, event)))
        if len(pending) >= chunk:
            await sender.send(pending)
            pending = []
    if pending:
        await sender.send(pending)
    return report


async def _send_live(
    handoff: _Handoff,
    prepared: Callable[[list[Line]], Iterator[tuple[int, RawEvent]]],
    sender: _Sender,
    rate: float | None,
    chunk: int,
    within_s: float,
    stamp: Callable[[int, RawEvent], RawEvent] = lambda _, event: event,
) -> None:
    """:func:`replay`'s sending of a live input: as for a file, but the lines come from
    ``handoff`` and the pending ones are sent ``within_s`` after the first of them was read,
    ``chunk`` or not. With ``rate``, a feed that paused earns no credit: the lines after
    a pause are paced from when they come, not sent in a burst to catch up. A read that
    fails (the pipe's writer gone wrong) first sends what was read: a pipe cannot be read
    again, so lines dropped there would be lost. ``stamp`` gives a line without an event time
    the time it is due."""
    start = time.monotonic()
    sent_by = math.inf  # when the pending lines are due
    count = 0
    pending: list[tuple[int, RawEvent]] = []
    try:
        while (batch := await handoff.take(max(0.0, sent_by - time.monotonic()) if pending else None)) is not None:
            for number, event in prepared(batch):
                if rate:
                    start = max(start, time.monotonic() - count / rate)  # no catch-up after a pause
                due = start + count / rate if rate else 0.0
                count += 1
                if due - time.monotonic() > 0.01 and pending:
                    await sender.send(pending)
                    pending = []
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                if not pending:
                    sent_by = time.monotonic() + within_s
                pending.append((number, stamp(number, event)))
                if len(pending) >= chunk:
                    await sender.send(pending)
                    pending = []
            if pending and time.monotonic() >= sent_by:
                await sender.send(pending)
                pending = []
        if pending:
            await sender.send(pending)
    except Exception:
        if pending:
            await sender.send(pending)  # what was read before the read failed
        raise
    finally:
        handoff.stop()
