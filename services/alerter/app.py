"""Alerter service (composition root).

Event-driven: the aggregator's transaction sends ``NOTIFY tonewatch_buckets``
with the (stream, entity, model version) keys it touched; PostgreSQL delivers it
at commit and we evaluate those keys at once. A sweep every
``sweep_interval_s`` re-evaluates recently updated keys as a safety net (e.g.
notifications missed while the alerter was down), every key with an alert not
yet resolved, which may get no new data at all (the entity went quiet, or a newly
promoted model version took over) and must still resolve, and every key with data
ahead of the wall clock, whose minutes come due without new data. The sweep first
resolves the open alerts whose rule no longer covers their entity (it left the rule's
group, or the watchlist): nothing would evaluate them again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregator.persist import NOTIFY_CHANNEL
from services.alerter import repo, store
from services.alerter.config import AlerterSettings
from services.alerter.deliver import Deliverer
from services.alerter.evaluate import Evaluator
from services.alerter.publish import announce_pending, notify_new, renew_claims
from shared import logs
from shared.db.models import CountedEvent, TrendHour, TrendMinute
from shared.db.session import make_engine, make_sessionmaker
from shared.failpoints import FailPoints
from shared.faults import unreachable
from shared.kafka.clients import ensure_topics, make_producer
from shared.metrics import metrics, serve
from shared.startup import kafka_dependency, postgres_dependency, redis_dependency, refuse_unmigrated, wait_for

log = logging.getLogger("tonewatch.alerter")
outbox_log = logging.getLogger(logs.OUTBOX_LOGGER)
Key = tuple[str, str, str]


async def recent_keys(sessions: async_sessionmaker[AsyncSession], since: datetime) -> set[Key]:
    """Keys with buckets updated since ``since``: read from the hourly rollup (updated in
    the same transaction as the minutes, 60 times smaller) through its updated_at index."""
    async with sessions() as s:
        q = (
            select(TrendHour.stream, TrendHour.entity, TrendHour.model_version)
            .where(TrendHour.updated_at >= since)
            .distinct()
        )
        return {(a, b, c) for a, b, c in await s.execute(q)}


# A bucket's updated_at is its writer's transaction START (``now()``), and the write
# shows only at commit: a sweep can miss a transaction still open as it reads, whose
# rows are then dated before that sweep. So the next sweep reads from the start of the
# oldest transaction writing the aggregator's batch tables (holding or awaiting a write
# lock on one: the ledger insert, its first statement, takes it), on the database's clock. Any other
# writer (an idle ``UPDATE alert_rules``) leaves the bound alone. PostgreSQL shows every
# session's locks but hides the start of another role's: with such a writer the bound
# stays where it was. The margin covers a writer between its BEGIN and its first
# statement, and clock steps.
SWEEP_MARGIN = timedelta(seconds=5)
SWEEP_LOOKBACK = timedelta(hours=2)  # the first sweep's reach, and the most any sweep reaches back
_BATCH_TABLES = (CountedEvent.__tablename__, TrendMinute.__tablename__, TrendHour.__tablename__)
_SWEEP_MARK = text(
    f"""
    SELECT now() AS now, min(a.xact_start) AS oldest_writer,
        coalesce(bool_or(a.xact_start IS NULL), false) AS hidden_writer
    FROM pg_stat_activity AS a
    WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.pid IN (
        SELECT l.pid FROM pg_locks AS l
        WHERE l.locktype = 'relation' AND l.mode = 'RowExclusiveLock'
            AND l.relation IN ({", ".join(f"CAST('{t}' AS regclass)" for t in _BATCH_TABLES)})
    )
    """
)


class SweepMark(NamedTuple):
    now: datetime
    oldest_writer: datetime | None
    hidden_writer: bool


async def sweep_mark(sessions: async_sessionmaker[AsyncSession]) -> SweepMark:
    async with sessions() as s:
        row = (await s.execute(_SWEEP_MARK)).one()
    return SweepMark(row.now, row.oldest_writer, row.hidden_writer)


def next_since(mark: SweepMark, since: datetime) -> datetime:
    """Where the sweep after one that read from ``since`` (after taking ``mark``) reads from."""
    bound = min(mark.now, mark.oldest_writer or mark.now) - SWEEP_MARGIN
    if mark.hidden_writer:
        bound = min(bound, since)
    floor = mark.now - SWEEP_LOOKBACK
    if bound < floor:
        _lookback_cut(mark, bound, floor)
    return max(bound, floor)


def _lookback_cut(mark: SweepMark, bound: datetime, floor: datetime) -> None:
    # Commits dated between the two are no longer swept: only their NOTIFY evaluates them.
    metrics().sweep_lookback_cut.inc()
    why = (
        f"a transaction writing the buckets has been open since {mark.oldest_writer}"
        if mark.oldest_writer is not None and mark.oldest_writer - SWEEP_MARGIN == bound
        else "sessions of another role, which hide their start, were writing the buckets at every sweep"
    )
    log.warning("the sweep reads back at most %s: from %s, not from %s (%s)", SWEEP_LOOKBACK, floor, bound, why)


class Sweep:
    """The sweep's recently updated keys, each read from where the previous one may have
    missed a commit (``next_since``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._since: datetime | None = None

    async def recent_keys(self) -> set[Key]:
        mark = await sweep_mark(self._sessions)  # before the read: whatever it misses is open now
        since = self._since or mark.now - SWEEP_LOOKBACK
        keys = await recent_keys(self._sessions, since)
        self._since = next_since(mark, since)
        return keys


def _evaluations_failed(failed: dict[Key, Exception], new: set[Key]) -> None:
    """One warning for a pass's failed keys; the traceback of a key's first failure."""
    shown = ", ".join(f"{'/'.join(k)} ({type(e).__name__}: {e})" for k, e in sorted(failed.items())[:5])
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    first = failed[min(new)] if new else None
    log.warning(
        "evaluating %d key(s) failed, retried at each sweep: %s%s",
        len(failed),
        shown,
        more,
        exc_info=(type(first), first, first.__traceback__) if first is not None else None,
    )


async def run(settings: AlerterSettings, stop: asyncio.Event | None = None) -> None:
    serve(settings.metrics_port)
    await wait_for(
        [kafka_dependency(settings.kafka), postgres_dependency(settings.postgres), redis_dependency(settings.redis)],
        deadline_s=settings.startup_deadline_s,
    )
    await ensure_topics(settings.kafka, [settings.topics.alerts])
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    engine = make_engine(settings.postgres)
    sessions = make_sessionmaker(engine)
    redis = Redis.from_url(settings.redis.url.get_secret_value(), socket_timeout=1, socket_connect_timeout=1)
    producer = make_producer(settings.kafka, client_id="alerter")
    await producer.start()
    deliverer = Deliverer(
        sessions,
        settings.webhook_secret.get_secret_value().encode(),
        timeout_s=settings.webhook_timeout_s,
        max_attempts=settings.webhook_max_attempts,
        backoff_s=settings.webhook_backoff_s,
        give_up_s=settings.webhook_give_up_s,
        policy=settings.webhook_policy(),
    )
    if settings.webhook_allowed_networks:
        log.warning(
            "webhooks may reach these internal networks (TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS): %s",
            ", ".join(map(str, settings.webhook_allowed_networks)),
        )
    evaluator = Evaluator(settings, sessions, redis)
    fail = FailPoints(settings.failpoints)
    pending: set[Key] = set()
    wake = asyncio.Event()
    announce_wake = asyncio.Event()
    listen_url = settings.postgres.url.get_secret_value().replace("postgresql+asyncpg://", "postgresql://")
    conn: asyncpg.Connection[Any] | None = None

    def on_notify(_c: object, _pid: int, _channel: str, payload: str) -> None:
        data = json.loads(payload)
        if data.get("all"):
            pending.add(("*", "*", "*"))
        for stream, entity, version in data.get("buckets", []):
            pending.add((stream, entity, version))
        wake.set()

    async def listen() -> None:
        nonlocal conn
        while not stop.is_set():
            if conn is None or conn.is_closed():
                try:
                    conn = await asyncpg.connect(listen_url)
                    await conn.add_listener(NOTIFY_CHANNEL, on_notify)
                    pending.add(("*", "*", "*"))  # catch up on anything missed
                    wake.set()
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("LISTEN connection failed (%s); retrying", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=2)

    async def sweep() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.sweep_interval_s)
            pending.add(("*", "*", "*"))
            wake.set()

    async def hand_over() -> None:
        # Webhooks for new firings (ours, or a crashed alerter's), now: PostgreSQL only,
        # never waiting on the broker or the alerts topic.
        try:
            await notify_new(sessions, deliverer)
        except Exception as exc:  # noqa: BLE001 - the database: the next pass retries
            outbox_log.warning("handing over webhooks failed (%s: %s); retrying", type(exc).__name__, exc)

    async def renew() -> None:
        # The claims of the alerts this alerter is delivering, renewed on their own clock:
        # a long evaluation pass (a sweep over thousands of keys) must not let them age
        # past the lease, or another alerter would take them over and post them again.
        every = max(0.5, min(5.0, deliverer.lease_s / 4))
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
            try:
                ids, sent = deliverer.in_flight, time.monotonic()
                renewed = await renew_claims(sessions, ids)  # only these still hold their claims
                deliverer.claim_renewed(renewed, sent)
            except Exception as exc:  # noqa: BLE001 - the database: renewed at the next tick
                outbox_log.warning("renewing webhook claims failed (%s: %s); retrying", type(exc).__name__, exc)

    async def work() -> None:
        sweeps = Sweep(sessions)
        # Keys whose evaluation raised (not an outage): retried at each sweep, not each
        # pass, so one poison key neither holds up the keys after it nor floods the log.
        failing: set[Key] = set()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=1)
            wake.clear()
            keys = set(pending)
            pending.clear()
            try:
                if ("*", "*", "*") in keys:
                    keys.discard(("*", "*", "*"))
                    uncovered = await repo.resolve_uncovered(sessions)
                    if uncovered:
                        log.info("resolved %d open alert(s) their rule no longer covers", len(uncovered))
                    keys |= await sweeps.recent_keys()
                    async with sessions() as session:
                        keys |= await store.open_alert_keys(session)
                    keys |= evaluator.ahead  # minutes that were ahead of the wall clock may be due now
                    keys |= failing  # the keys whose evaluation raised: once a sweep
                snap = await evaluator.snapshot() if keys else None
                failed: dict[Key, Exception] = {}
                for key in sorted(keys):
                    try:
                        changes = await evaluator.evaluate(*key, snap)
                    except Exception as exc:  # one key's bug or data: the others go on
                        if unreachable(exc):
                            raise  # an outage: the whole pass waits and retries, as below
                        failed[key] = exc
                        continue
                    failing.discard(key)
                    for change in changes:
                        fail.hit("after_alert_commit" if change.kind == "fire" else "after_resolve_commit")
                    if any(change.kind == "fire" for change in changes):
                        await hand_over()  # its webhooks now, not after the rest of the pass
                        announce_wake.set()
                if failed:
                    _evaluations_failed(failed, new=failed.keys() - failing)
                    failing.update(failed)
                metrics().alert_keys_failing.set(len(failing))
            except Exception as exc:  # noqa: BLE001 - infrastructure: retry the keys later
                log.warning("evaluation failed (%s: %s); retrying", type(exc).__name__, exc)
                pending.update(keys)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1)
                wake.set()
            await hand_over()  # another alerter's unfinished claims, channels due for a retry
            announce_wake.set()

    async def announce() -> None:
        # The outbox: the firings and status changes (ours, or the API's and CLI's acks
        # and resolutions) on the alerts topic, each alert's events in order: open ->
        # acknowledged -> resolved. Its own loop: a produce that waits out a broker
        # outage (up to request_timeout_ms) holds up nothing else.
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(announce_wake.wait(), timeout=1)
            announce_wake.clear()
            try:
                await announce_pending(sessions, producer, settings.topics.alerts)
            except Exception as exc:  # noqa: BLE001 - the broker or the topic: the next pass retries
                outbox_log.warning("announcing alerts failed (%s: %s); retrying", type(exc).__name__, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1)

    tasks = [asyncio.create_task(c) for c in (listen(), sweep(), work(), announce(), renew())]
    log.info("alerter running: evaluating on NOTIFY %s, sweeping every %g s", NOTIFY_CHANNEL, settings.sweep_interval_s)
    try:
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if conn is not None and not conn.is_closed():
            await conn.close()
        await deliverer.drain()
        await producer.stop()
        await redis.aclose()
        await engine.dispose()


def main() -> int:
    settings = AlerterSettings()
    logs.configure(settings.log_level, "alerter")
    refusal = settings.production_secret_refusal()
    if refusal:
        log.critical("alerter cannot start: %s", refusal)
        return 2
    if refuse_unmigrated("alerter", settings.postgres, deadline_s=settings.startup_deadline_s):
        return 2
    asyncio.run(run(settings))
    return 0
