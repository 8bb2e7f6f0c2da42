"""Live alert feed: one poller per process watches the ``alerts`` table and fans
new or changed alerts out to every subscriber (the SSE streams).

It sees inserts from the alerter and status changes from anyone (API, CLI,
auto-resolve, plain SQL), whatever their timestamps (replayed history included). It
runs only while someone listens. A subscriber that falls too far behind, or every
subscriber when one poll finds more changes than it sends one by one (a bulk SQL update)
or the server's transaction ids went back (database restored, failover), gets a
``resync`` item and is dropped: its stream ends and its EventSource reconnects and gets
a fresh snapshot.

Each queued alert carries a cursor, a transaction id: once its stream has sent it, the
client has every alert change made by a transaction below that id, and a reconnection
that gives it back (``Last-Event-ID``) reads what changed since. Transaction ids are the
cluster's, not this process's: a stream resumes on any API process.

Each poll reads only what changed, through ``alerts.changed_xid``: the id of the
transaction that inserted the alert or last changed its status, set by a trigger for
every writer (migration 0008). A cursor on the largest value seen would miss a
transaction that took a smaller value and committed after the poll. Instead, each
poll reads, in one snapshot, that snapshot's ``xmin`` (``pg_snapshot_xmin``) and the
rows with ``changed_xid >=`` the previous poll's xmin:

- every transaction a snapshot does not see (still running, or not begun) has an id at
  or above its xmin; the ids below it have all committed or aborted and are visible;
- so a row version the previous poll did not see was written by a transaction with an
  id at/above that poll's xmin, and the next poll that sees it reads it.

Rows read again (committed before the previous poll while an older transaction was
still running) are recognised by ``(id, changed_xid)`` and not sent twice. The poll
reads rows changed since the oldest transaction then open anywhere in the cluster:
normally a handful, never the whole table; at most ``POLL_MAX_ALERTS`` are fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import ARRAY, Select, String, any_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import Alert, AlertRule

log = logging.getLogger("tonewatch.api.feed")
QUEUE_SIZE = 1000
# A poll that finds more new changes resyncs its subscribers instead of fetching them:
# it bounds a poll's memory (the explanations) and never fills, in one poll, the queue of
# a subscriber that keeps up.
POLL_MAX_ALERTS = 500

SNAPSHOT: Mapping[str, Any] = MappingProxyType({"isolation_level": "REPEATABLE READ", "postgresql_readonly": True})
"""The connection options of a snapshot read: one REPEATABLE READ, read-only transaction,
so its xmin, markers and alerts come from one snapshot. They must be set before the
transaction begins (:func:`snapshot`, or ``Deps.reads(SNAPSHOT)`` for a time-limited one)."""

Snapshots = Callable[[], contextlib.AbstractAsyncContextManager[AsyncSession]]
"""Opens a session whose transaction is a :data:`SNAPSHOT` read."""


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


class FeedAlert(AlertOut):
    """A queued alert, with the cursor a stream resumes from once it has sent it: the
    start of the read that found it (that read's changes may have been sent only in part)."""

    cursor: int = Field(exclude=True)


class Resync(Enum):
    """Why a subscriber must reload a snapshot: the last item of its queue, or why a
    stream cannot resume from the cursor its client gave."""

    TOO_MANY_CHANGES = "too_many_changes"
    FELL_BEHIND = "fell_behind"
    DATABASE_RESET = "database_reset"
    INVALID_CURSOR = "invalid_last_event_id"


FeedItem = FeedAlert | Resync | None  # None: the subscription ended (server shutdown)


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
    """The alerts with these ids. One array parameter, not one per id: asyncpg refuses
    more than 32,767 parameters."""
    id_array = bindparam("ids", list(ids), type_=ARRAY(String))
    rows = (await session.execute(alerts_query().where(Alert.id == any_(id_array)).order_by(Alert.fired_at))).all()
    return [to_out(a, name) for a, name in rows]


@dataclass(frozen=True)
class Changes:
    """One read of the change markers, all in one snapshot."""

    xmin: int  # the snapshot's xmin: the next read starts there
    marks: dict[str, int]  # id -> changed_xid of the alerts read, all of those at/above xmin included
    alerts: list[AlertOut]  # those not already handled: new or changed since the previous read
    too_many: bool = False  # more than POLL_MAX_ALERTS not handled: none fetched


async def read_changes(
    session: AsyncSession, since: int | None, handled: Mapping[str, int], fetch: bool = True
) -> Changes:
    """Alerts whose ``changed_xid`` is at/above ``since`` (the previous read's xmin; None:
    this snapshot's own xmin, for a baseline), fetching those whose ``(id, changed_xid)``
    is not in ``handled``, unless there are more than ``POLL_MAX_ALERTS``: then only the
    markers at/above xmin are read (what the next read may see again). Runs in one
    REPEATABLE READ, read-only transaction, so the xmin, the markers and the alerts come
    from one snapshot: ``session`` must be a :data:`SNAPSHOT` read (:data:`Snapshots`)."""
    xmin = await snapshot_xmin(session)
    start = xmin if since is None else since
    # Enough rows to tell whether more than POLL_MAX_ALERTS are not handled yet.
    marks = await read_marks(session, start, limit=len(handled) + POLL_MAX_ALERTS + 1)
    changed = [i for i, xid in marks.items() if handled.get(i) != xid]
    if len(changed) > POLL_MAX_ALERTS:
        return Changes(xmin=xmin, marks=await read_marks(session, xmin), alerts=[], too_many=True)
    alerts = await fetch_alerts(session, changed) if fetch and changed else []
    return Changes(xmin=xmin, marks=marks, alerts=alerts)


@contextlib.asynccontextmanager
async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A :data:`SNAPSHOT` read without a time limit: the feed's polls, which wait out a
    slow database (a lock, say) rather than fail, so a stream already running only pauses.
    A read that answers a request uses ``Deps.reads(SNAPSHOT)`` instead."""
    async with sessions() as session, session.begin():
        await session.connection(execution_options=SNAPSHOT)
        yield session


async def snapshot_xmin(session: AsyncSession) -> int:
    """The xmin of the session's :data:`SNAPSHOT`: every transaction it does not see has
    an id at or above it."""
    return int((await session.execute(select(func.pg_snapshot_xmin(func.pg_current_snapshot())))).scalar_one())


async def read_marks(session: AsyncSession, start: int, limit: int | None = None) -> dict[str, int]:
    """id -> changed_xid of the alerts whose marker is at/above ``start``."""
    query = select(Alert.id, Alert.changed_xid).where(Alert.changed_xid >= start).limit(limit)
    return dict((await session.execute(query)).tuples().all())


class AlertFeed:
    """Shared poller; use :meth:`subscribe` as an async context manager."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], interval_s: float) -> None:
        self._sessions = sessions
        self._interval = interval_s
        self._subs: set[asyncio.Queue[FeedItem]] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event = asyncio.Event()
        # Where the next poll starts (the last poll's snapshot xmin) and what it already
        # handled at/above it: (id -> changed_xid).
        self._since: int | None = None
        self._handled: dict[str, int] = {}

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    @contextlib.asynccontextmanager
    async def subscribe(self, first_read: Snapshots | None = None) -> AsyncIterator[asyncio.Queue[FeedItem]]:
        """A queue of changed alerts; ``None`` or a :class:`Resync` means the subscriber
        was dropped. Returns once the poller has its baseline, so nothing between is missed.
        When this subscription starts the poller, its baseline is read in ``first_read``
        (a request's time-limited read, ``Deps.reads(SNAPSHOT)``): a database too slow then
        fails the subscription with that read's error instead of hanging it. The polls
        that follow read without a limit (:func:`snapshot`)."""
        queue: asyncio.Queue[FeedItem] = asyncio.Queue(QUEUE_SIZE)
        self._subs.add(queue)
        try:
            if self._task is None or self._task.done():
                self._ready = asyncio.Event()
                self._task = asyncio.create_task(self._run(first_read), name="alert-feed")
            # this subscription's poller: a later subscription may start another once it
            # is done, before this one resumes
            task = self._task
            ready = asyncio.create_task(self._ready.wait())
            done, _ = await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
            if ready not in done:
                ready.cancel()
                task.result()  # re-raise the poller's start-up error
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
        """End every subscription, then stop polling. In that order: one that starts while
        the poller is being cancelled has started a new poller and must not be ended."""
        for queue in list(self._subs):
            self._drop(queue)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _read(
        self, since: int | None, handled: Mapping[str, int], fetch: bool, snapshots: Snapshots | None = None
    ) -> Changes:
        """:func:`read_changes` in a snapshot from ``snapshots``; by default the feed's
        own, without a time limit."""
        opened = snapshots() if snapshots is not None else snapshot(self._sessions)
        async with opened as session:
            return await read_changes(session, since, handled, fetch)

    def _advance(self, changes: Changes) -> None:
        """The next poll starts at this snapshot's xmin; of what was read, it may read
        again only what is at/above it."""
        self._since = changes.xmin
        self._handled = {i: xid for i, xid in changes.marks.items() if xid >= changes.xmin}

    async def _baseline(self, snapshots: Snapshots | None = None) -> None:
        """Start from what is committed now: it is not sent (the stream's snapshot shows it)."""
        self._advance(await self._read(None, {}, fetch=False, snapshots=snapshots))

    async def _run(self, first_read: Snapshots | None = None) -> None:
        await self._baseline(first_read)
        self._ready.set()
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.poll_once()
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not end the feed
                log.warning("alert feed poll failed: %s: %s", type(exc).__name__, exc)

    async def poll_once(self) -> list[AlertOut]:
        """Publish alerts that are new or changed since the last poll. The cursor moves
        on only once they are sent: after a failed poll (PostgreSQL restarting), the next
        one sends them. Subscribers resync when there are too many, or when the server's
        transaction ids went back below the cursor: rows written since then are below it,
        where no poll would look."""
        since = self._since
        changes = await self._read(since, self._handled, fetch=True)
        if since is not None and changes.xmin < since:
            log.warning(
                "alert feed: the database's transaction ids went back (xmin %d, below the cursor %d: "
                "restored, recreated or failed over); taking a new baseline, subscribers resync",
                changes.xmin,
                since,
            )
            await self._baseline()
            self._resync_all(Resync.DATABASE_RESET)
            return []
        if changes.too_many:
            log.warning("alert feed: over %d alerts changed since the last poll; subscribers resync", POLL_MAX_ALERTS)
            self._resync_all(Resync.TOO_MANY_CHANGES)
        cursor = changes.xmin if since is None else since
        for alert in changes.alerts:
            item = FeedAlert.model_construct(**dict(alert), cursor=cursor)
            for queue in list(self._subs):
                try:
                    queue.put_nowait(item)
                except asyncio.QueueFull:
                    log.warning("alert stream subscriber fell behind; it resyncs")
                    self._drop(queue, Resync.FELL_BEHIND)
        self._advance(changes)
        return changes.alerts

    def _resync_all(self, reason: Resync) -> None:
        for queue in list(self._subs):
            self._drop(queue, reason)

    def _drop(self, queue: asyncio.Queue[FeedItem], last: Resync | None = None) -> None:
        """Unsubscribe ``queue``, ending it with ``last``. A full queue is emptied to make
        room, not shortened at its head: the alerts queued later carry larger cursors, and a
        client sent them but not the oldest (nor ``last``: its connection dropped) resumed
        past it. Those it is not sent are read again from the cursor it holds."""
        self._subs.discard(queue)
        if queue.full():
            while not queue.empty():
                queue.get_nowait()
        queue.put_nowait(last)
