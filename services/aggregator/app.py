"""Aggregator service (composition root): text.scored -> PostgreSQL buckets."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregator.config import AggregatorSettings
from services.aggregator.persist import (
    TREND_RUN_CAP,
    TooOld,
    expire,
    expire_trends,
    store_batch,
    strip_alert_texts,
)
from shared import logs
from shared.db.session import make_engine, make_sessionmaker
from shared.events import InvalidEvent, ScoredEvent, decode_json, parse
from shared.failpoints import FailPoints
from shared.kafka.batches import BatchPolicy, Handler, Records
from shared.kafka.dlq import DeadLetterRatioExceeded, DeadLetterWriter, FailedRecord, RatioGuard
from shared.kafka.sink import SinkClients, every, run_sink
from shared.metrics import metrics
from shared.startup import kafka_dependency, postgres_dependency, refuse_unmigrated

log = logging.getLogger("tonewatch.aggregator")
SERVICE = "aggregator"
T = TypeVar("T")
TOO_OLD_LOG_INTERVAL_S = 60.0


class TooOldLog:
    """Warns of the events past the trend retention cutoff (counted, in no trend bucket): the
    first at once, then at most one line a minute with the count since the last line, so a
    backfill of old history does not log every batch."""

    def __init__(self, interval_s: float = TOO_OLD_LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self.interval_s, self.clock = interval_s, clock
        self.pending: dict[str, tuple[int, datetime]] = {}
        self.last: float | None = None

    def __call__(self, dropped: TooOld) -> None:
        for stream, (n, cutoff) in dropped.items():
            self.pending[stream] = (self.pending.get(stream, (0, cutoff))[0] + n, cutoff)
            metrics().trend_events_too_old.labels(SERVICE, stream).inc(n)
        if self.last is None or self.clock() - self.last >= self.interval_s:
            self.flush()

    def flush(self) -> None:
        """Log what is pending (the retention runs call it, so a last trickle is not held back)."""
        if not self.pending:
            return
        self.last = self.clock()
        events = ", ".join(
            f"{n} {stream} events (cutoff {cutoff.isoformat()})" for stream, (n, cutoff) in sorted(self.pending.items())
        )
        log.warning(
            "dropped too old: %s counted but not added to their minute buckets (nor to an hour bucket wholly "
            "past the cutoff), older than their stream's trend "
            "retention cutoff (TW_AGGREGATOR_TREND_RETENTION_DAYS)",
            events,
        )
        self.pending = {}


def decode_scored(
    records: Records, refuse: Callable[[ScoredEvent], str | None] | None = None
) -> tuple[list[ScoredEvent], list[FailedRecord]]:
    """Scored events, and the records that are not one (dead letters with the reason);
    ``refuse`` gives the reason a scored event is no use to the caller (an ``InvalidEvent``
    dead letter), or None."""
    good, bad = [], []
    for r in records:
        try:
            event = parse(ScoredEvent, decode_json(r.value))
            if refuse is None or (why := refuse(event)) is None:
                good.append(event)
                continue
            error_class, reason = "InvalidEvent", why
        except InvalidEvent as exc:
            error_class, reason = exc.error_class, exc.reason
        except Exception as exc:
            log.exception("record %s[%d]@%d could not be decoded; dead-lettered", r.topic, r.partition, r.offset)
            error_class, reason = type(exc).__name__, f"cannot decode: {exc}"
        bad.append(
            FailedRecord(
                r.topic,
                r.partition,
                r.offset,
                r.key,
                r.value,
                list(r.headers or ()),
                error_class,
                reason,
                timestamp_ms=r.timestamp,
            )
        )
    return good, bad


async def _step(what: str, job: Callable[[], Awaitable[T]]) -> T | None:
    """One retention step; a failure is logged and gives None, so the other steps still run
    (one step failing every round, e.g. a scored-event cutoff out of range, once kept the
    alert texts from being stripped and the trend buckets from expiring)."""
    try:
        return await job()
    except Exception as exc:  # noqa: BLE001 - tried again next round
        log.warning("retention run: %s failed: %s", what, exc)
        return None


async def retention_run(
    sessions: async_sessionmaker[AsyncSession], settings: AggregatorSettings, too_old: TooOldLog
) -> None:
    """Expire scored events and ledger ids, strip old alert texts and expire trend buckets,
    each step independent of the others (see ``_step``)."""
    too_old.flush()
    expired = await _step(
        "expiring scored events and ledger ids",
        lambda: expire(
            sessions, scored_days=settings.scored_retention_days, ledger_days=settings.ledger_retention_days
        ),
    )
    a, b = expired or (0, 0)

    async def strip() -> int:
        cutoff = datetime.now(UTC) - timedelta(days=settings.scored_retention_days)
        return await strip_alert_texts(sessions, cutoff=cutoff)

    c = await _step("removing old alert message texts", strip) or 0
    trends = (
        await _step("expiring trend buckets", lambda: expire_trends(sessions, days=settings.trend_retention_days)) or {}
    )
    d = sum(trends.values())
    if a or b or c or d:
        log.info(
            "retention: deleted %d scored events, %d ledger ids and %d trend rows (%s), "
            "removed the message texts of %d alerts",
            a,
            b,
            d,
            ", ".join(f"{table} {n}" for table, n in trends.items()),
            c,
        )
    if d >= TREND_RUN_CAP:
        log.info("retention: trend rows deleted up to the run's cap (%d); the next runs delete the rest", d)


async def run(settings: AggregatorSettings, stop: asyncio.Event | None = None) -> None:
    engine = make_engine(settings.postgres)
    sessions = make_sessionmaker(engine)
    m = metrics()
    fail = FailPoints(settings.failpoints)
    too_old = TooOldLog()

    async def make_handler(clients: SinkClients) -> Handler:
        dlq = DeadLetterWriter(clients.producer, SERVICE, RatioGuard(settings.dlq_max_ratio), stop=clients.stop)
        clients.dead_letter = dlq.dead_letter  # records the database refuses: dead-lettered, not retried

        async def handle(records: Records) -> None:
            m.batch_size.labels(SERVICE).observe(len(records))
            good, bad = decode_scored(records)
            start = time.perf_counter()
            new = await store_batch(
                sessions,
                good,
                before_commit=lambda: fail.hit("before_db_commit"),
                trend_retention_days=settings.trend_retention_days,
                too_old=too_old,
            )
            fail.hit("after_db_commit")
            m.db_flush_latency.labels(SERVICE).observe(time.perf_counter() - start)
            m.events_out.labels(SERVICE, "postgres").inc(new)
            for f in bad:  # after the effect; a batch retried through an outage asks again
                if await dlq.write(f):
                    m.dead_letters.labels(SERVICE, f.topic, f.error_class).inc()
            bad_places = {(f.partition, f.offset) for f in bad}
            for r in records:
                m.events_in.labels(SERVICE, r.topic).inc()
                dlq.guard.record(failed=(r.partition, r.offset) in bad_places)

        return handle

    async def retention() -> None:
        await retention_run(sessions, settings, too_old)

    try:
        await run_sink(
            name=SERVICE,
            settings=settings,
            topics=[settings.topics.text_scored],
            group_id=settings.group_id,
            deps=[kafka_dependency(settings.kafka), postgres_dependency(settings.postgres)],
            make_handler=make_handler,
            policy=BatchPolicy(max_batch=settings.max_batch, max_wait_ms=settings.max_wait_ms),
            background=[every(settings.retention_interval_s, retention, "retention run")],
            stop=stop,
        )
    finally:
        await engine.dispose()


def main() -> int:
    settings = AggregatorSettings()
    logs.configure(settings.log_level, SERVICE)
    if refuse_unmigrated(SERVICE, settings.postgres, deadline_s=settings.startup_deadline_s):
        return 2
    try:
        asyncio.run(run(settings))
    except DeadLetterRatioExceeded as exc:
        log.critical("stopping: %s", exc)
        return 1
    return 0
