"""Replay records into the raw topics, paced by ``rate`` (events per second) or by
``speedup`` (original event-time gaps divided by X, event times moved to now).

With ``speedup``, ``backfill_s`` starts the moved timeline that many seconds in the
past: the events that land before now are sent at once (history for the trends and
the alert baselines), the rest in real time.

With ``rate`` or no pacing the input is streamed (memory stays flat however long the
file); ``speedup`` reads it all first, to order it by event time."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from services.ingest.produce import line_id, prepare, produce
from services.ingest.sources import Line
from shared.events import InvalidEvent, RawEvent, Stream
from shared.topics import Topics

MAX_ID_CHARS = 128
"""An event id's longest length (``shared.events.EventId``)."""
MAX_REJECTIONS_KEPT = 1_000
"""Rejected lines whose number and reason a report keeps; the rest are only counted."""


@dataclass
class ReplayReport:
    produced: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """(line number, reason) of the first :data:`MAX_REJECTIONS_KEPT` rejected lines."""
    rejected_total: int = 0

    def reject(self, line: int, reason: str) -> None:
        self.rejected_total += 1
        if len(self.rejected) < MAX_REJECTIONS_KEPT:
            self.rejected.append((line, reason))


@dataclass(frozen=True)
class Pacing:
    rate: float | None = None
    speedup: float | None = None
    backfill_s: float = 0.0

    def __post_init__(self) -> None:
        if self.rate is not None and self.speedup is not None:
            raise ValueError("use either --rate or --speedup, not both")
        if (self.rate is not None and self.rate <= 0) or (self.speedup is not None and self.speedup <= 0):
            raise ValueError("--rate and --speedup must be positive")
        if self.backfill_s < 0:
            raise ValueError("--backfill must not be negative")
        if self.backfill_s and self.speedup is None:
            raise ValueError("--backfill needs --speedup (it moves the replayed timeline into the past)")


def run_stamp(now: datetime) -> int:
    """A replay run's stamp: its start in Unix milliseconds."""
    return int(now.timestamp() * 1000)


def run_id(event_id: str, run: int) -> str:
    """``{event_id}@{run}``, the id of an event in the replay run ``run``. Within the
    ``EventId`` contract (at most 128 characters of ``[\\w.:@/-]``): a longer original id
    is cut and a digest of it added, so distinct ids stay distinct."""
    suffix = f"@{run}"
    if len(event_id) + len(suffix) <= MAX_ID_CHARS:
        return event_id + suffix
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:32]
    return f"{event_id[: MAX_ID_CHARS - len(suffix) - len(digest) - 1]}.{digest}{suffix}"


def _retime(
    events: list[RawEvent], speedup: float, now: datetime, backfill_s: float = 0.0
) -> list[tuple[float, RawEvent]]:
    """(send offset in seconds from now, event with event_time moved to now + that offset).

    The first event lands ``backfill_s`` before ``now``; events that land in the past
    get send offset 0 (sent at once) and keep their past event time."""
    if not events:
        return []
    t0 = min(e.event_time for e in events)
    start = now.timestamp() - backfill_s
    out = []
    for e in sorted(events, key=lambda e: e.event_time):
        offset = (e.event_time - t0).total_seconds() / speedup
        moved = datetime.fromtimestamp(start + offset, tz=UTC)
        out.append((max(0.0, offset - backfill_s), e.model_copy(update={"event_time": moved})))
    return out


def _prepared(lines: Iterable[Line], stream: Stream, report: ReplayReport, origin: str) -> Iterator[RawEvent]:
    """Valid events, one at a time (a line without an id gets :func:`line_id`'s); unreadable
    and invalid lines go to the report."""
    for line in lines:
        if line.data is None:
            report.reject(line.number, line.error or "unreadable")
            continue
        try:
            yield prepare(line.data, stream, id_if_missing=functools.partial(line_id, origin, line.number, line.data))
        except InvalidEvent as exc:
            report.reject(line.number, exc.reason)


def _renamed(events: Iterable[RawEvent], run: int) -> Iterator[RawEvent]:
    for e in events:
        yield e.model_copy(update={"id": run_id(e.id, run)})


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
) -> ReplayReport:
    """Produce the valid lines, paced. A line without an id gets one derived from
    ``origin`` (the source's name), its number and its content, the same in every run.
    Events get :func:`run_id` ids of ``run`` when it is given, and of this run's start
    with ``speedup`` (which moves event times)."""
    report = ReplayReport()
    now = datetime.now(UTC)
    if run is None and pacing.speedup is not None:
        run = run_stamp(now)
    events = _prepared(lines, stream, report, origin)
    if run is not None:
        events = _renamed(events, run)
    schedule: Iterable[tuple[float, RawEvent]]
    if pacing.speedup is not None:
        schedule = _retime(list(events), pacing.speedup, now, pacing.backfill_s)
    elif pacing.rate is not None:
        rate = pacing.rate
        schedule = ((i / rate, e) for i, e in enumerate(events))
    else:
        schedule = ((0.0, e) for e in events)
    start = time.monotonic()
    pending: list[RawEvent] = []
    for offset, event in schedule:
        wait = start + offset - time.monotonic()
        if wait > 0.01 and pending:
            await produce(producer, topics, pending)
            report.produced += len(pending)
            if progress:
                progress(len(pending))
            pending = []
            wait = start + offset - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        pending.append(event)
        if len(pending) >= chunk:
            await produce(producer, topics, pending)
            report.produced += len(pending)
            if progress:
                progress(len(pending))
            pending = []
    if pending:
        await produce(producer, topics, pending)
        report.produced += len(pending)
        if progress:
            progress(len(pending))
    return report
