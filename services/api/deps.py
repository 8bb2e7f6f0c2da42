"""The API's external dependencies, built from settings without connecting.

PostgreSQL connects on the first query, Redis on the first command, and the Kafka
producer is started on the first ``POST /v1/events`` (so a read-only API runs
while Kafka is down, and ``/readyz`` says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import Request
from redis.asyncio import Redis
from sqlalchemy import Engine, event, text
from sqlalchemy.engine.interfaces import ExceptionContext, ExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.alerter.netguard import AddressPolicy
from services.api.config import ApiSettings
from services.api.errors import note_statement_time
from shared.db.session import make_engine, make_sessionmaker
from shared.inference.registry import Registry
from shared.kafka.clients import make_producer

SERVICE = "api"
log = logging.getLogger("tonewatch.api.deps")

READ_LIMIT = "tonewatch_read_limit_s"
"""The execution option of a :meth:`Deps.reads` connection: its statements' time limit (s)."""

_started: weakref.WeakKeyDictionary[ExecutionContext, tuple[float, float]] = weakref.WeakKeyDictionary()
"""When each running statement under a :data:`READ_LIMIT` started, and its limit."""


def _on_statement(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: ExecutionContext | None, executemany: bool
) -> None:
    """Note when a statement of a time-limited read starts (``before_cursor_execute``)."""
    limit = conn.get_execution_options().get(READ_LIMIT)
    if context is not None and limit is not None:
        _started[context] = (time.monotonic(), limit)


def _on_error(ctx: ExceptionContext) -> None:
    """Record on a failed time-limited statement's driver error how long it ran
    (``handle_error``): a statement cancelled (57014) after running its limit timed out,
    whatever language the server's message is in (:func:`services.api.errors.cancel_was_timeout`)."""
    context = ctx.execution_context
    started = _started.pop(context, None) if context is not None else None
    if started is not None:
        began, limit = started
        note_statement_time(ctx.original_exception, elapsed_s=time.monotonic() - began, limit_s=limit)


def _time_statements(engine: Engine) -> None:
    """Listen, once per engine, for its time-limited statements' start and failure."""
    if not event.contains(engine, "handle_error", _on_error):
        event.listen(engine, "before_cursor_execute", _on_statement)
        event.listen(engine, "handle_error", _on_error)


@dataclass
class Deps:
    """Handles the routes use. ``aclose()`` releases them."""

    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    registry: Registry
    new_producer: Callable[[], AIOKafkaProducer]
    engine: AsyncEngine | None = None
    read_timeout_s: float = 10.0
    """Time limit of each statement in :meth:`reads` (``TW_API_READ_TIMEOUT_S``)."""
    _producer: AIOKafkaProducer | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _retired: weakref.WeakSet[AIOKafkaProducer] = field(default_factory=weakref.WeakSet, init=False)
    _stopping: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    alone: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    """Held while a record is sent again alone after a refusal (one at a time across
    requests, so a record the topic refuses again is not batched with the others)."""

    @contextlib.asynccontextmanager
    async def reads(self, execution_options: Mapping[str, Any] | None = None) -> AsyncIterator[AsyncSession]:
        """A session for a read endpoint's queries: its transaction first sets
        ``statement_timeout`` (``SET LOCAL``: it ends with the transaction, the pooled
        connection keeps no limit), so PostgreSQL cancels a statement that runs longer,
        as an unbounded window's ranking of the whole table would (503 ``query_timeout``,
        :mod:`services.api.errors`). Nothing is written: the transaction is rolled back.
        Each statement's running time is measured: a cancelled one that ran the limit is
        that timeout whatever language PostgreSQL's message is in (``lc_messages``),
        where an operator's ``pg_cancel_backend`` before it is not.

        ``execution_options`` are the connection's (``isolation_level``,
        ``postgresql_readonly``: a snapshot read, :data:`services.api.alert_feed.SNAPSHOT`),
        set here because they take effect only before the transaction begins (SQLAlchemy
        ignores them, with a warning, on a connection already in use); SQLAlchemy resets
        them when the connection goes back to the pool."""
        ms = max(1, round(self.read_timeout_s * 1000))
        async with self.sessions() as session:
            connection = await session.connection(execution_options=execution_options or None)
            # set_config(..., true) is SET LOCAL with a bound value
            await session.execute(text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": f"{ms}ms"})
            # the limit as an option of this transaction's connection only (a later one of
            # the session has no limit), from the first statement that runs under it
            _time_statements(connection.sync_engine)
            await connection.execution_options(**{READ_LIMIT: ms / 1000})
            yield session

    async def producer(self) -> AIOKafkaProducer:
        """The shared idempotent producer, started on first use."""
        async with self._lock:
            if self._producer is None:
                producer = self.new_producer()
                try:
                    await producer.start()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    def retire(self, producer: AIOKafkaProducer) -> None:
        """Replace ``producer`` after the broker refused a record it sent (larger than the
        topic's ``max.message.bytes``, say): the refusal left a gap in its idempotent
        sequence for that partition, and every later record it sends there would fail
        with ``OutOfOrderSequenceNumber``. The next :meth:`producer` call starts a new one
        (a new producer id starts its sequences afresh); the old one is stopped in the
        background, so what other requests have in flight on it is answered first.
        Synchronous, so it runs in the refused record's done-callback, before any later
        answer of that partition; calling it again for the same producer does nothing."""
        if producer in self._retired:
            return
        self._retired.add(producer)
        if self._producer is producer:
            self._producer = None
        log.warning("the Kafka producer is replaced after a refused record")
        task = asyncio.get_running_loop().create_task(self._stop_retired(producer))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def is_retired(self, producer: AIOKafkaProducer) -> bool:
        """Whether ``producer`` was replaced (:meth:`retire`): an error of a record sent on
        it (``OutOfOrderSequenceNumber``, the producer closed) is then no fault of the
        record, and sending it again succeeds on the new producer."""
        return producer in self._retired

    @staticmethod
    async def _stop_retired(producer: AIOKafkaProducer) -> None:
        try:
            await producer.stop()
        except Exception as exc:  # noqa: BLE001 - a replaced producer's failed stop harms nothing
            log.warning("stopping a replaced Kafka producer failed: %s", exc)

    async def aclose(self) -> None:
        """Stop the producer, close Redis and dispose of the engine: each, even when an
        earlier one raised (a producer that fails to stop must not leave the database
        connections open); the first error is raised once all have run."""
        try:
            if self._producer is not None:
                producer, self._producer = self._producer, None
                await producer.stop()
        finally:
            try:
                if self._stopping:
                    await asyncio.gather(*self._stopping, return_exceptions=True)
            finally:
                try:
                    await self.redis.aclose()
                finally:
                    if self.engine is not None:
                        await self.engine.dispose()


def make_deps(settings: ApiSettings) -> Deps:
    """Dependencies from settings; nothing connects yet."""
    engine = make_engine(settings.postgres)
    return Deps(
        sessions=make_sessionmaker(engine),
        redis=Redis.from_url(settings.redis.url.get_secret_value(), socket_connect_timeout=2, socket_timeout=2),
        registry=Registry(settings.models_dir),
        new_producer=lambda: make_producer(settings.kafka, client_id=SERVICE),
        engine=engine,
        read_timeout_s=settings.read_timeout_s,
    )


def get_deps(request: Request) -> Deps:
    """FastAPI dependency: the app's :class:`Deps`."""
    deps: Deps = request.app.state.deps
    return deps


def get_settings(request: Request) -> ApiSettings:
    """FastAPI dependency: the app's settings."""
    settings: ApiSettings = request.app.state.settings
    return settings


def get_webhook_policy(request: Request) -> AddressPolicy:
    """FastAPI dependency: the internal networks webhook URLs may name when a rule is
    saved (the alerter's ``TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS``)."""
    policy: AddressPolicy = request.app.state.webhook_policy
    return policy
