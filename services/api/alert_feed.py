"""Live alert feed: one poller per process watches the ``alerts`` table and fans
new or changed alerts out to every subscriber (the SSE streams).

The poller compares ``(id, status)`` pairs each interval, so it sees inserts
from the alerter and status changes from anyone (API, CLI, auto-resolve),
whatever their timestamps (replayed history included). It runs only while
someone listens. A subscriber that falls too far behind is dropped; its
EventSource reconnects and gets a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import Alert, AlertRule

log = logging.getLogger("tonewatch.api.feed")
QUEUE_SIZE = 1000


class AlertOut(BaseModel):
    """An alert as the API shows it."""

    id: str
    rule_id: int
    rule_name: str | None
    entity: str
    stream: str
    status: str
    severity: str
    window_start: datetime
    window_end: datetime
    fired_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    model_version: str
    explanation: dict[str, Any]


def alerts_query() -> Select[Alert, str]:
    """Alerts with their rule names."""
    return select(Alert, AlertRule.name).outerjoin(AlertRule, AlertRule.id == Alert.rule_id)


def to_out(alert: Alert, rule_name: str | None) -> AlertOut:
    return AlertOut(
        id=alert.id,
        rule_id=alert.rule_id,
        rule_name=rule_name,
        entity=alert.entity,
        stream=alert.stream,
        status=alert.status,
        severity=alert.severity,
        window_start=alert.window_start,
        window_end=alert.window_end,
        fired_at=alert.fired_at,
        acknowledged_at=alert.acknowledged_at,
        resolved_at=alert.resolved_at,
        model_version=alert.model_version,
        explanation=dict(alert.explanation or {}),
    )


async def fetch_alerts(session: AsyncSession, ids: Sequence[str]) -> list[AlertOut]:
    rows = (await session.execute(alerts_query().where(Alert.id.in_(list(ids))).order_by(Alert.fired_at))).all()
    return [to_out(a, name) for a, name in rows]


class AlertFeed:
    """Shared poller; use :meth:`subscribe` as an async context manager."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], interval_s: float) -> None:
        self._sessions = sessions
        self._interval = interval_s
        self._subs: set[asyncio.Queue[AlertOut | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event = asyncio.Event()
        self._known: dict[str, str] = {}

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[AlertOut | None]]:
        """A queue of changed alerts; ``None`` means the subscriber was dropped.
        Returns once the poller has its baseline, so nothing between is missed."""
        queue: asyncio.Queue[AlertOut | None] = asyncio.Queue(QUEUE_SIZE)
        self._subs.add(queue)
        try:
            if self._task is None or self._task.done():
                self._ready = asyncio.Event()
                self._task = asyncio.create_task(self._run(), name="alert-feed")
            ready = asyncio.create_task(self._ready.wait())
            done, _ = await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
            if ready not in done:
                ready.cancel()
                self._task.result()  # re-raise the poller's start-up error
            yield queue
        finally:
            self._subs.discard(queue)
            if not self._subs:
                await self.stop()

    def end_subscriptions(self) -> None:
        """End every stream now (server shutdown): their clients see the stream close."""
        for queue in list(self._subs):
            self._drop(queue)

    async def stop(self) -> None:
        """Stop polling and end every subscription."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for queue in list(self._subs):
            self._drop(queue)

    async def _status_map(self) -> dict[str, str]:
        async with self._sessions() as session:
            return dict((await session.execute(select(Alert.id, Alert.status))).tuples().all())

    async def _run(self) -> None:
        self._known = await self._status_map()
        self._ready.set()
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.poll_once()
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not end the feed
                log.warning("alert feed poll failed: %s: %s", type(exc).__name__, exc)

    async def poll_once(self) -> list[AlertOut]:
        """Publish alerts that are new or changed since the last poll. The baseline moves
        on only once they are sent: after a failed poll (PostgreSQL restarting), the next
        one sends them."""
        current = await self._status_map()
        changed = [i for i, status in current.items() if self._known.get(i) != status]
        if not changed:
            self._known = current
            return []
        async with self._sessions() as session:
            alerts = await fetch_alerts(session, changed)
        for alert in alerts:
            for queue in list(self._subs):
                try:
                    queue.put_nowait(alert)
                except asyncio.QueueFull:
                    log.warning("alert stream subscriber fell behind; dropping it")
                    self._drop(queue)
        self._known = current
        return alerts

    def _drop(self, queue: asyncio.Queue[AlertOut | None]) -> None:
        self._subs.discard(queue)
        while True:
            try:
                queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                queue.get_nowait()
