"""Replay records into the raw topics, paced by ``rate`` (events per second) or by
``speedup`` (original event-time gaps divided by X, event times moved to now)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from services.ingest.produce import prepare, produce
from services.ingest.sources import Line
from shared.events import InvalidEvent, RawEvent, Stream
from shared.topics import Topics


@dataclass
class ReplayReport:
    produced: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Pacing:
    rate: float | None = None
    speedup: float | None = None

    def __post_init__(self) -> None:
        if self.rate is not None and self.speedup is not None:
            raise ValueError("use either --rate or --speedup, not both")
        if (self.rate is not None and self.rate <= 0) or (self.speedup is not None and self.speedup <= 0):
            raise ValueError("--rate and --speedup must be positive")


def _retime(events: list[RawEvent], speedup: float, start: datetime) -> list[tuple[float, RawEvent]]:
    """(send offset in seconds, event with event_time moved to start + offset)."""
    if not events:
        return []
    t0 = min(e.event_time for e in events)
    out = []
    for e in sorted(events, key=lambda e: e.event_time):
        offset = (e.event_time - t0).total_seconds() / speedup
        moved = start.timestamp() + offset
        out.append((offset, e.model_copy(update={"event_time": datetime.fromtimestamp(moved, tz=UTC)})))
    return out


async def replay(
    producer: AIOKafkaProducer,
    topics: Topics,
    lines: Iterable[Line],
    stream: Stream,
    pacing: Pacing,
    *,
    progress: Callable[[int], Any] | None = None,
    chunk: int = 200,
) -> ReplayReport:
    report = ReplayReport()
    events: list[RawEvent] = []
    for line in lines:
        if line.data is None:
            report.rejected.append((line.number, line.error or "unreadable"))
            continue
        try:
            events.append(prepare(line.data, stream))
        except InvalidEvent as exc:
            report.rejected.append((line.number, exc.reason))
    if pacing.speedup is not None:
        schedule = _retime(events, pacing.speedup, datetime.now(UTC))
    elif pacing.rate is not None:
        schedule = [(i / pacing.rate, e) for i, e in enumerate(events)]
    else:
        schedule = [(0.0, e) for e in events]
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
