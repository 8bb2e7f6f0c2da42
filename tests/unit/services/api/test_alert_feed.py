"""The live alert feed's poller, driven with a fake database that keeps PostgreSQL's
rules for transaction ids: ids are handed out in order, a transaction's writes are seen
once it commits, and a snapshot's xmin is the lowest id still running."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import alert_feed
from services.api.alert_feed import AlertFeed, AlertOut, Changes, FeedAlert, FeedItem, Resync, Snapshots

T = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)


def _alert(alert_id: str, status: str) -> AlertOut:
    return AlertOut(
        id=alert_id,
        rule_id=1,
        rule_name="r",
        entity="acme",
        stream="news",
        status=status,
        severity="warning",
        window_start=T,
        window_end=T,
        fired_at=T,
        acknowledged_at=None,
        resolved_at=None,
        model_version="v1",
        explanation={},
    )


class FakeDb:
    """Committed rows ``id -> (status, changed_xid)`` and the transactions still running."""

    def __init__(self) -> None:
        self.next_xid = 100
        self.rows: dict[str, tuple[str, int]] = {}
        self.running: dict[int, dict[str, str]] = {}
        self.fail_reads = 0
        self.reads: list[int | None] = []
        self.fetched: list[list[str]] = []
        self.opened_by: list[Snapshots | None] = []

    def begin(self) -> int:
        xid, self.next_xid = self.next_xid, self.next_xid + 1
        self.running[xid] = {}
        return xid

    def write(self, xid: int, alert_id: str, status: str) -> None:
        self.running[xid][alert_id] = status

    def commit(self, xid: int) -> None:
        for alert_id, status in self.running.pop(xid).items():
            self.rows[alert_id] = (status, xid)

    def write_committed(self, **statuses: str) -> None:
        xid = self.begin()
        for alert_id, status in statuses.items():
            self.write(xid, alert_id, status)
        self.commit(xid)

    async def read(
        self, since: int | None, handled: Mapping[str, int], fetch: bool, snapshots: Snapshots | None = None
    ) -> Changes:
        """What ``read_changes`` reads from one snapshot (opened by ``snapshots``: recorded)."""
        self.reads.append(since)
        self.opened_by.append(snapshots)
        if self.fail_reads:
            self.fail_reads -= 1
            raise ConnectionRefusedError("PostgreSQL is restarting")
        xmin = min(self.running, default=self.next_xid)
        start = xmin if since is None else since
        marks = {i: xid for i, (_, xid) in self.rows.items() if xid >= start}
        changed = sorted(i for i, xid in marks.items() if handled.get(i) != xid)
        if len(changed) > alert_feed.POLL_MAX_ALERTS:
            return Changes(xmin=xmin, marks={i: x for i, x in marks.items() if x >= xmin}, alerts=[], too_many=True)
        if fetch and changed:
            self.fetched.append(changed)
        alerts = [_alert(i, self.rows[i][0]) for i in changed] if fetch else []
        return Changes(xmin=xmin, marks=marks, alerts=alerts)


def _feed(monkeypatch: pytest.MonkeyPatch, db: FakeDb) -> AlertFeed:
    feed = AlertFeed(sessions=lambda: contextlib.nullcontext(), interval_s=3600)  # type: ignore[arg-type]
    monkeypatch.setattr(feed, "_read", db.read)
    return feed


def _sent(alerts: list[AlertOut]) -> list[tuple[str, str]]:
    return sorted((a.id, a.status) for a in alerts)


def _drain(queue: asyncio.Queue[FeedItem]) -> list[FeedItem]:
    """What the subscriber's stream sends, in order."""
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def _resumed(db: FakeDb, opening: int, sent: list[FeedItem]) -> set[str]:
    """The alerts a client reads by reconnecting with the last event id it got: the cursor
    of the last alert it was sent (each is at least the one before), else its opening's."""
    cursors = [item.cursor for item in sent if isinstance(item, FeedAlert)]
    return {a.id for a in (await db.read(max([opening, *cursors]), {}, fetch=True)).alerts}


async def test_changes_whose_fetch_failed_are_sent_by_the_next_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    db = FakeDb()
    db.write_committed(a0="open")
    feed = _feed(monkeypatch, db)
    async with feed.subscribe() as queue:  # baseline: a0 open
        db.write_committed(a0="resolved", a1="open")
        db.fail_reads = 1
        with pytest.raises(ConnectionRefusedError):
            await feed.poll_once()
        assert queue.empty()
        sent = await feed.poll_once()
        assert _sent(sent) == [("a0", "resolved"), ("a1", "open")]
        assert _sent([queue.get_nowait(), queue.get_nowait()]) == _sent(sent)
        assert await feed.poll_once() == [] and queue.empty()  # sent once
        assert db.reads[1] == db.reads[2]  # the failed poll did not move the cursor


async def test_a_transaction_that_commits_after_a_later_one_is_still_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """T1 takes its id first and commits last: a cursor on the largest id seen would skip it."""
    db = FakeDb()
    db.write_committed(a0="open")
    feed = _feed(monkeypatch, db)
    async with feed.subscribe() as queue:
        t1 = db.begin()
        db.write(t1, "a1", "open")
        db.write(t1, "a0", "acknowledged")
        db.write_committed(a2="open")  # T2: a later id, committed first
        assert _sent(await feed.poll_once()) == [("a2", "open")]
        db.commit(t1)
        assert _sent(await feed.poll_once()) == [("a0", "acknowledged"), ("a1", "open")]
        assert await feed.poll_once() == []
        assert db.fetched == [["a2"], ["a0", "a1"]]  # a2, read again with T1's rows, was not fetched again
        assert [queue.get_nowait().id for _ in range(3)] == ["a2", "a0", "a1"]


async def test_what_was_committed_before_subscribing_is_not_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """An old transaction still running keeps the next polls reading what committed
    after it; what was already committed at the baseline is known, not news."""
    db = FakeDb()
    old = db.begin()
    db.write_committed(a0="open")
    feed = _feed(monkeypatch, db)
    async with feed.subscribe():
        assert await feed.poll_once() == []
        db.write_committed(a0="resolved")
        assert _sent(await feed.poll_once()) == [("a0", "resolved")]
        assert await feed.poll_once() == []
        db.commit(old)
        assert await feed.poll_once() == []
    assert feed.subscribers == 0


async def test_transaction_ids_going_back_take_a_new_baseline(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The database was restored or failed over while the API ran: its ids now come out
    below the cursor, where no poll looks. The feed notices (the snapshot's xmin is below
    the cursor), resyncs its subscribers and follows the new ids."""
    db = FakeDb()
    db.write_committed(a0="open")
    db.write_committed(a1="open")
    feed = _feed(monkeypatch, db)
    async with feed.subscribe() as queue:
        assert db.reads == [None]  # the baseline: the cursor is at 102
        db.next_xid = 100  # the ids start again lower
        db.write_committed(a2="open")
        assert await feed.poll_once() == []
        assert queue.get_nowait() is Resync.DATABASE_RESET  # the stream ends: the client reloads a snapshot
        assert "transaction ids went back (xmin 101, below the cursor 102" in caplog.text
        async with feed.subscribe() as again:
            db.write_committed(a3="open")
            assert _sent(await feed.poll_once()) == [("a3", "open")]
            assert again.get_nowait().id == "a3"


async def test_a_subscriber_arriving_while_the_last_one_stops_the_poller_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A leaves last, and its stop() waits for the cancelled poller; B subscribes meanwhile
    and starts a new poller. A's stop() must not end B's subscription."""
    db = FakeDb()
    feed = _feed(monkeypatch, db)
    a = feed.subscribe()
    await a.__aenter__()
    leaving = asyncio.create_task(a.__aexit__(None, None, None))
    await asyncio.sleep(0)  # A's stop() now awaits the cancelled poller
    async with feed.subscribe() as queue:
        await leaving
        assert feed.subscribers == 1 and queue.empty()
        db.write_committed(a0="open")
        assert _sent(await feed.poll_once()) == [("a0", "open")]
        assert queue.get_nowait().id == "a0"
    assert feed.subscribers == 0


async def test_a_poll_with_too_many_changes_resyncs_every_subscriber(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bulk change (more alerts than one poll sends) is not fetched nor queued one by
    one, which overflowed every queue and dropped even fast subscribers silently: each
    gets a resync, and what follows is sent as usual to those who subscribe again."""
    monkeypatch.setattr(alert_feed, "POLL_MAX_ALERTS", 2)
    db = FakeDb()
    feed = _feed(monkeypatch, db)
    async with feed.subscribe() as q1, feed.subscribe() as q2:
        db.write_committed(a0="open", a1="open", a2="open")
        assert await feed.poll_once() == []
        assert db.fetched == []
        assert [q1.get_nowait(), q2.get_nowait()] == [Resync.TOO_MANY_CHANGES] * 2
        assert feed.subscribers == 0
        async with feed.subscribe() as q3:
            db.write_committed(a0="resolved")
            assert _sent(await feed.poll_once()) == [("a0", "resolved")]
            assert q3.get_nowait().id == "a0" and q1.empty()


async def test_a_subscriber_that_falls_behind_resyncs_and_the_others_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alert_feed, "QUEUE_SIZE", 2)
    db = FakeDb()
    feed = _feed(monkeypatch, db)
    async with feed.subscribe() as slow, feed.subscribe() as fast:
        for n in range(3):
            db.write_committed(**{f"a{n}": "open"})
            await feed.poll_once()
            assert fast.get_nowait().id == f"a{n}"
        assert feed.subscribers == 1
        assert _drain(slow) == [Resync.FELL_BEHIND]  # not a1: a0, before it, was not sent


async def test_a_queued_alert_carries_the_start_of_the_read_that_found_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cursor a stream resumes from once it has sent the alert: the start of the read
    that found it, not that read's xmin (a client may get only part of one read's alerts:
    resuming from the start reads the rest again). It is not in the event's data."""
    db = FakeDb()
    feed = _feed(monkeypatch, db)
    async with feed.subscribe() as queue:  # the baseline's xmin: 100
        db.write_committed(a0="open", a1="open")  # transaction 100
        await feed.poll_once()  # reads from 100; its xmin is 101
        items = [queue.get_nowait(), queue.get_nowait()]
    assert db.reads == [None, 100]
    assert [(a.id, a.cursor) for a in items if isinstance(a, alert_feed.FeedAlert)] == [("a0", 100), ("a1", 100)]
    assert all("cursor" not in a.model_dump() for a in items if isinstance(a, AlertOut))


async def test_a_subscriber_that_falls_behind_is_sent_no_alert_past_one_it_missed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its queue is emptied for the resync. Dropping its oldest alert instead sent the later
    ones, whose cursors are past it: a client whose connection dropped before the resync came
    resumed from there and never got the oldest."""
    monkeypatch.setattr(alert_feed, "QUEUE_SIZE", 2)
    db = FakeDb()
    feed = _feed(monkeypatch, db)
    async with feed.subscribe() as slow:
        opening = db.next_xid  # the cursor its stream opened at: the baseline's xmin
        for n in range(3):
            db.write_committed(**{f"a{n}": "open"})
            await feed.poll_once()
        sent = _drain(slow)
    assert sent[-1] is Resync.FELL_BEHIND
    assert {"a0", "a1", "a2"} <= await _resumed(db, opening, sent[:-1])


async def test_a_full_queue_ended_at_shutdown_is_sent_no_alert_past_one_it_missed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At shutdown a full queue is emptied for its end: dropping its oldest alert instead
    sent the later one and ended the stream, and the client resumed past the oldest."""
    monkeypatch.setattr(alert_feed, "QUEUE_SIZE", 2)
    db = FakeDb()
    feed = _feed(monkeypatch, db)
    async with feed.subscribe() as queue:
        opening = db.next_xid
        for n in range(2):
            db.write_committed(**{f"a{n}": "open"})
            await feed.poll_once()
        feed.end_subscriptions()
        sent = _drain(queue)
    assert sent[-1] is None
    assert {"a0", "a1"} <= await _resumed(db, opening, sent[:-1])


@contextlib.asynccontextmanager
async def _limited() -> AsyncIterator[AsyncSession]:
    """Stands for ``Deps.reads(SNAPSHOT)``: a request's time-limited snapshot read."""
    raise AssertionError("the fake database reads nothing")
    yield  # pragma: no cover


async def test_only_the_baseline_of_a_poller_a_subscription_starts_is_read_in_its_first_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The subscription waits for the baseline: it is read in the subscriber's time-limited
    ``first_read``. The polls of the stream that follows keep the feed's own, unlimited
    reads (a slow database pauses a running stream, it does not end it), and a subscription
    joining a running poller reads no baseline."""
    db = FakeDb()
    feed = _feed(monkeypatch, db)
    async with feed.subscribe(_limited):
        await feed.poll_once()
        async with feed.subscribe(_limited):
            await feed.poll_once()
    assert db.opened_by == [_limited, None, None]


async def test_a_baseline_past_the_time_limit_fails_the_subscription_and_the_next_one_starts_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first read's error (PostgreSQL cancelling it: 503 query_timeout in the API) ends
    the subscription that waited for it, and no poller is left running; the next
    subscription starts a new one."""
    db = FakeDb()
    feed = _feed(monkeypatch, db)
    db.fail_reads = 1
    with pytest.raises(ConnectionRefusedError):
        async with feed.subscribe(_limited):
            raise AssertionError("subscribed without a baseline")
    assert feed.subscribers == 0 and feed._task is None
    async with feed.subscribe(_limited) as queue:
        db.write_committed(a0="open")
        assert _sent(await feed.poll_once()) == [("a0", "open")]
        assert queue.get_nowait().id == "a0"
    assert db.opened_by == [_limited, _limited, None]


async def test_subscribers_of_a_failed_baseline_get_its_error_when_a_new_poller_has_started() -> None:
    """The baseline fails; before the two waiting subscribers resume, a third subscription
    starts a new poller. The waiting ones must get the failed baseline's error (a 503
    ``query_timeout`` to their clients), not ``InvalidStateError`` from the new,
    unfinished poller (a 500)."""

    class Timeout(Exception):
        pass

    loop = asyncio.get_running_loop()
    gate: asyncio.Future[None] = loop.create_future()
    third_goes: asyncio.Future[None] = loop.create_future()
    calls = 0

    async def read(since: object, handled: object, fetch: object, snapshots: object = None) -> Changes:
        nonlocal calls
        calls += 1
        if calls == 1:
            await gate
            third_goes.set_result(None)  # another request resumes just before the poller is done
            raise Timeout("canceling statement due to statement timeout")
        await asyncio.sleep(3600)  # the second poller's baseline: slow
        raise AssertionError("unreachable")

    feed = AlertFeed(sessions=lambda: contextlib.nullcontext(), interval_s=3600)  # type: ignore[arg-type, return-value]
    feed._read = read  # type: ignore[method-assign, assignment]

    async def subscriber(wait: asyncio.Future[None] | None = None) -> str:
        if wait is not None:
            await wait
        try:
            async with feed.subscribe(contextlib.nullcontext):  # type: ignore[arg-type]
                return "subscribed"
        except Exception as exc:
            return type(exc).__name__

    first = asyncio.create_task(subscriber())
    await asyncio.sleep(0)
    second = asyncio.create_task(subscriber())
    await asyncio.sleep(0)
    third = asyncio.create_task(subscriber(third_goes))
    await asyncio.sleep(0)
    gate.set_result(None)
    got = [await asyncio.wait_for(first, 2), await asyncio.wait_for(second, 2)]
    third.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await third
    await feed.stop()
    assert got == ["Timeout", "Timeout"]
