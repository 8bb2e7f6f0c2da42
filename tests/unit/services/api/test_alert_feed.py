"""The live alert feed's poller, driven with a fake database that keeps PostgreSQL's
rules for transaction ids: ids are handed out in order, a transaction's writes are seen
once it commits, and a snapshot's xmin is the lowest id still running."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from services.api.alert_feed import AlertFeed, AlertOut, Changes

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

    async def read(self, since: int | None, handled: Mapping[str, int], fetch: bool) -> Changes:
        """What ``read_changes`` reads from one snapshot."""
        self.reads.append(since)
        if self.fail_reads:
            self.fail_reads -= 1
            raise ConnectionRefusedError("PostgreSQL is restarting")
        xmin = min(self.running, default=self.next_xid)
        start = xmin if since is None else since
        marks = {i: xid for i, (_, xid) in self.rows.items() if xid >= start}
        changed = sorted(i for i, xid in marks.items() if handled.get(i) != xid)
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
