"""``dlq_ops.replay`` against an in-memory broker (the real one: tests/integration/shared/kafka/test_dlq_ops.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, MessageSizeTooLargeError, OutOfOrderSequenceNumber

from shared.config import KafkaSettings
from shared.events import InvalidEvent, decode_raw
from shared.kafka import dlq_ops
from shared.kafka.dlq import FailedRecord, dlq_headers, original_timestamp, replay_count

TOPIC = "news.raw"
DLQ = "news.raw.dlq"


@dataclass
class _Rec:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: int


@dataclass
class _Broker:
    """The DLQ's partitions, the replay group's commits, and what reached the source topic
    (topic limit ``max_bytes``; the idempotent producer's sequence breaks after a refusal)."""

    partitions: int = 1
    max_bytes: int = 1024 * 1024
    log: dict[int, list[_Rec]] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)
    source: list[tuple[bytes | None, int | None]] = field(default_factory=list)
    source_headers: list[list[tuple[str, bytes]]] = field(default_factory=list)
    after_commit: Callable[[], None] | None = None
    before_poll: Callable[[_Consumer], Awaitable[None]] | None = None
    assignment: set[int] = field(default_factory=set)
    """The partitions the replay is first assigned (empty: all)."""
    fetch: int = 500
    """Most records one poll returns per partition."""
    polls: int = 0
    fail_commits: bool = False
    consumers: list[_Consumer] = field(default_factory=list)

    def dead_letter(
        self,
        partition: int,
        value: bytes,
        *,
        timestamp: int = 1_000,
        error_class: str = "E",
        headers: list[tuple[str, bytes]] | None = None,
        **kw: Any,
    ) -> None:
        part = self.log.setdefault(partition, [])
        rec = FailedRecord(TOPIC, partition, len(part), b"k", value, headers or [], error_class, "bad", **kw)
        part.append(_Rec(partition, len(part), b"k", value, dlq_headers(rec, "classifier"), timestamp))


class _Consumer:
    """One group member: assigned ``broker.assignment`` (all partitions by default) when it
    first polls; :meth:`rebalance` moves it to another set as the group would (revoke,
    then assign, each partition restarting from its committed offset)."""

    def __init__(self, broker: _Broker) -> None:
        self.b = broker
        self.tps: set[TopicPartition] = set()
        self.pos: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self.listener: Any = None
        self.joined = False
        broker.consumers.append(self)

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        assert topics == [DLQ]
        self.listener = listener

    async def rebalance(self, partitions: set[int]) -> None:
        if self.listener is not None:
            await self.listener.on_partitions_revoked(set(self.tps))
        self.tps = {TopicPartition(DLQ, p) for p in partitions}
        self.pos = {tp: self.b.committed.get(tp.partition, 0) for tp in self.tps}
        self._paused = set()
        if self.listener is not None:
            await self.listener.on_partitions_assigned(set(self.tps))

    def assignment(self) -> set[TopicPartition]:
        return set(self.tps)

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.b.partitions))

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.b.log.get(tp.partition, [])) for tp in tps}

    def _assigned(self, tp: TopicPartition) -> None:
        if tp not in self.tps:
            raise IllegalStateError(f"Partition {tp} is not assigned")

    async def position(self, tp: TopicPartition) -> int:
        self._assigned(tp)
        return self.pos[tp]

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.b.committed.get(tp.partition)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.pos[tp] = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.pos[tp] = 0

    def pause(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self._assigned(tp)
        self._paused.update(tps)

    def paused(self) -> set[TopicPartition]:
        return self._paused

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[_Rec]]:
        if not self.joined:
            self.joined = True
            await self.rebalance(self.b.assignment or set(range(self.b.partitions)))
        self.b.polls += 1
        if self.b.before_poll is not None:
            await self.b.before_poll(self)
        out: dict[TopicPartition, list[_Rec]] = {}
        n = max_records or 500
        for tp in sorted(self.tps - self._paused, key=lambda t: t.partition):
            recs = self.b.log.get(tp.partition, [])[self.pos[tp] : self.pos[tp] + min(n, self.b.fetch)]
            if recs:
                out[tp] = recs
                self.pos[tp] += len(recs)
                n -= len(recs)
        return out

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        for tp in offsets or {}:
            if self.b.fail_commits:
                raise CommitFailedError("the group has already rebalanced")
            self._assigned(tp)
        for tp, off in (offsets or self.pos).items():
            self.b.committed[tp.partition] = off
        if self.b.after_commit is not None:
            self.b.after_commit()


class _Producer:
    def __init__(self, broker: _Broker) -> None:
        self.b = broker
        self.broken: set[bytes | None] = set()  # partitions (by key) with a sequence gap

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def send(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, **kw: Any
    ) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if key in self.broken:
            fut.set_exception(OutOfOrderSequenceNumber())
        elif len(value or b"") > self.b.max_bytes:
            self.broken.add(key)
            fut.set_exception(MessageSizeTooLargeError())
        else:
            self.b.source.append((value, kw.get("timestamp_ms")))
            self.b.source_headers.append(kw.get("headers") or [])
            fut.set_result(None)
        return fut


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> _Broker:
    b = _Broker()
    monkeypatch.setattr(dlq_ops, "_replay_consumer", lambda *a, **k: _Consumer(b))
    monkeypatch.setattr(dlq_ops, "make_producer", lambda *a, **k: _Producer(b))
    return b


SETTINGS = KafkaSettings()


async def test_a_record_the_topic_refuses_is_reported_and_the_rest_replayed_once(broker: _Broker) -> None:
    broker.dead_letter(0, b"small-0")
    broker.dead_letter(0, b"x" * 1_500_000)
    broker.dead_letter(0, b"small-2")
    report = await dlq_ops.replay_report(SETTINGS, TOPIC)
    assert report.replayed == 2
    assert [(f.place, f.original, f.error_class) for f in report.failed] == [
        ("news.raw.dlq[0]@1", "news.raw[0]@1", "MessageSizeTooLargeError")
    ]
    assert [v for v, _ in broker.source] == [b"small-0", b"small-2"]  # each once, in order
    assert broker.committed == {0: 3}  # past the refused record: a later replay skips it
    assert (await dlq_ops.replay_report(SETTINGS, TOPIC)).replayed == 0


async def test_dead_letters_arriving_during_a_replay_are_left_for_the_next(
    broker: _Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker.partitions = 2
    for i in range(42):
        broker.dead_letter(i % 2, f"bad-{i}".encode())
    monkeypatch.setattr(dlq_ops, "REPLAY_CHUNK", 10)
    arrived = 0

    def one_more() -> None:
        nonlocal arrived
        broker.dead_letter(arrived % 2, f"new-{arrived}".encode())
        arrived += 1

    broker.after_commit = one_more
    assert await dlq_ops.replay(SETTINGS, TOPIC) == 42
    assert arrived > 0
    broker.after_commit = None
    assert await dlq_ops.replay(SETTINGS, TOPIC) == arrived  # none lost, none twice
    assert sorted(v or b"" for v, _ in broker.source) == sorted(
        [f"bad-{i}".encode() for i in range(42)] + [f"new-{i}".encode() for i in range(arrived)]
    )


async def test_a_replayed_record_has_its_original_timestamp(broker: _Broker) -> None:
    """Written with the current time (an old one may be past the topic's retention), the
    original's in ``tw.timestamp``."""
    broker.dead_letter(0, b"with-header", timestamp=2_000, timestamp_ms=1_000)
    broker.dead_letter(0, b"older-dead-letter", timestamp=3_000)  # no tw.timestamp: the dead letter's
    assert await dlq_ops.replay(SETTINGS, TOPIC) == 2
    assert broker.source == [(b"with-header", None), (b"older-dead-letter", None)]
    assert [original_timestamp(h) for h in broker.source_headers] == [1_000, 3_000]


async def test_a_plain_replay_leaves_the_classes_that_fail_again_and_counts_them(broker: _Broker) -> None:
    """Malformed or invalid records only return (a burst of them stopped the classifier on
    its ratio guard, and each replay added a copy to the DLQ)."""
    for i, cls in enumerate(["ClassificationError", "ValidationError", "E", "JSONDecodeError", "ValidationError"]):
        broker.dead_letter(0, f"{cls}-{i}".encode(), error_class=cls)
    report = await dlq_ops.replay_report(SETTINGS, TOPIC)
    assert [v for v, _ in broker.source] == [b"ClassificationError-0", b"E-2"]
    assert report.replayed == 2 and report.left == {"ValidationError": 2, "JSONDecodeError": 1}
    assert broker.committed == {0: 5}


async def test_a_record_replayed_max_replays_times_is_reported_not_sent_unless_forced(broker: _Broker) -> None:
    broker.dead_letter(0, b"fresh")
    broker.dead_letter(0, b"twice", headers=[("tw.replays", b"2")])
    broker.dead_letter(0, b"thrice", headers=[("tw.replays", b"3")])
    broker.dead_letter(0, b"thrice-too", headers=[("tw.replays", b"3")])
    report = await dlq_ops.replay_report(SETTINGS, TOPIC, limit=3)
    assert [v for v, _ in broker.source] == [b"fresh", b"twice"]
    assert [replay_count(h) for h in broker.source_headers] == [1, 3]  # one more than their dead letters'
    assert [(f.place, f.error_class, f.reason) for f in report.over_limit] == [
        ("news.raw.dlq[0]@2", "E", "replayed 3 times already (limit 3)")
    ]
    forced = await dlq_ops.replay_report(SETTINGS, TOPIC, select=dlq_ops.Selection(force=True))
    assert (forced.replayed, forced.over_limit) == (1, [])
    assert replay_count(broker.source_headers[-1]) == 4


def test_a_plain_replay_and_each_named_class_have_their_own_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """So a class a plain replay passed over is still replayed when named later."""
    monkeypatch.setattr(dlq_ops, "REPLAY_GROUP", "g")
    (plain,) = dlq_ops._lanes(dlq_ops.Selection())
    assert plain.group == "g" and plain.takes("ClassificationError") and plain.takes(None)
    assert not any(plain.takes(c) for c in dlq_ops.PERMANENT_ERROR_CLASSES)
    named = dlq_ops._lanes(dlq_ops.Selection(frozenset({"ValidationError", "ClassificationError"})))
    assert [lane.group for lane in named] == ["g.ClassificationError", "g.ValidationError"]
    assert named[1].takes("ValidationError") and not named[1].takes("JSONDecodeError") and not named[1].takes(None)


@pytest.mark.parametrize(
    "value",
    [None, b"\xff", b"{bad", b"[1]", b'{"text": "x", "event_time": "yesterday"}', b'{"text": "x", "stream": "chat"}'],
)
def test_every_class_decoding_gives_is_one_that_fails_again(value: bytes | None) -> None:
    """The classes a raw record's decoding dead-letters with are the permanent ones."""
    with pytest.raises(InvalidEvent) as raised:
        decode_raw(value, stream="news", topic=TOPIC, partition=0, offset=0, timestamp_ms=1)
    assert raised.value.error_class in dlq_ops.PERMANENT_ERROR_CLASSES


def _once_each(broker: _Broker) -> list[bytes]:
    """What reached the source topic, checking that nothing arrived twice."""
    got = [v or b"" for v, _ in broker.source]
    assert len(got) == len(set(got)), sorted(v for v in got if got.count(v) > 1)
    return got


async def test_a_partition_assigned_mid_replay_is_replayed_to_its_end_at_the_start(
    broker: _Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay starts with partitions 0 and 1 (another member has 2 and 3) and is given
    all four after its first commit: it took no end offset for 2 and 3 at the start (a
    KeyError before); it replays them too, to where the DLQ ended when it started."""
    broker.partitions = 4
    broker.assignment = {0, 1}
    for i in range(40):
        broker.dead_letter(i % 4, f"bad-{i}".encode())
    monkeypatch.setattr(dlq_ops, "REPLAY_CHUNK", 5)

    async def before_poll(consumer: _Consumer) -> None:
        if broker.committed and len(consumer.tps) == 2:
            broker.dead_letter(3, b"late")  # after the start: left for the next replay
            await consumer.rebalance({0, 1, 2, 3})

    broker.before_poll = before_poll
    report = await dlq_ops.replay_report(SETTINGS, TOPIC)
    assert (report.replayed, report.failed, report.uncommitted) == (40, [], [])
    assert sorted(_once_each(broker)) == sorted(f"bad-{i}".encode() for i in range(40))
    assert broker.committed == {0: 10, 1: 10, 2: 10, 3: 10}
    broker.before_poll, broker.assignment = None, set()
    assert (await dlq_ops.replay_report(SETTINGS, TOPIC)).replayed == 1  # the late one


async def test_records_fetched_before_a_rebalance_are_not_sent_and_what_was_sent_is_committed(
    broker: _Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk takes several polls; the group takes partitions 2 and 3 away part way
    through one: what was fetched but not sent is dropped (their next owner starts from
    the committed offset), and every record this replay sent is committed, so nothing is
    replayed twice between it and the next owner."""
    broker.partitions = 4
    broker.fetch = 1  # a poll brings 4 records, a chunk takes 3 polls
    for i in range(80):
        broker.dead_letter(i % 4, f"bad-{i}".encode())
    monkeypatch.setattr(dlq_ops, "REPLAY_CHUNK", 10)
    moved: list[int] = []

    async def before_poll(consumer: _Consumer) -> None:
        if broker.polls == 6 and not moved:  # part way through the second chunk (8 records in hand)
            moved.append(broker.polls)
            await consumer.rebalance({0, 1})

    broker.before_poll = before_poll
    first = await dlq_ops.replay_report(SETTINGS, TOPIC)
    assert moved and first.uncommitted == []
    sent = _once_each(broker)
    for p in (2, 3):  # what it sent of the partitions it lost is exactly what it committed
        assert sorted(v for v in sent if int(v.split(b"-")[1]) % 4 == p) == sorted(
            f"bad-{i}".encode() for i in range(p, 4 * broker.committed.get(p, 0), 4)
        )
    broker.before_poll = None
    second = await dlq_ops.replay_report(SETTINGS, TOPIC)  # the member that got 2 and 3
    assert first.replayed + second.replayed == 80
    assert sorted(_once_each(broker)) == sorted(f"bad-{i}".encode() for i in range(80))
    assert broker.committed == {p: 20 for p in range(4)}


def _second_commit_fails_then(broker: _Broker, monkeypatch: pytest.MonkeyPatch, assigned: set[int]) -> None:
    """30 dead letters on partition 0, replayed 10 at a time; the second chunk's commit
    fails (the group moved on), then the replay is rebalanced to ``assigned``."""
    for i in range(30):
        broker.dead_letter(0, f"bad-{i}".encode())
    monkeypatch.setattr(dlq_ops, "REPLAY_CHUNK", 10)

    async def before_poll(consumer: _Consumer) -> None:
        if broker.committed == {0: 10} and not broker.fail_commits and consumer.pos[TopicPartition(DLQ, 0)] == 10:
            broker.fail_commits = True
        elif broker.fail_commits:
            broker.fail_commits = False
            await consumer.rebalance(assigned)

    broker.before_poll = before_poll


async def test_a_failed_commit_is_reported_and_not_sent_again_when_the_partition_comes_back(
    broker: _Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    _second_commit_fails_then(broker, monkeypatch, {0})  # the partition comes back, from offset 10
    report = await dlq_ops.replay_report(SETTINGS, TOPIC)
    assert (report.replayed, report.uncommitted) == (30, [])  # committed when it came back
    assert _once_each(broker) == [f"bad-{i}".encode() for i in range(30)]  # 10 to 19 not sent again
    assert broker.committed == {0: 30}


async def test_a_failed_commit_of_a_partition_given_away_is_reported(
    broker: _Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    _second_commit_fails_then(broker, monkeypatch, set())  # another member has it now
    report = await dlq_ops.replay_report(SETTINGS, TOPIC)
    assert report.replayed == 20
    assert [(u.place, u.count, u.reason.split(":")[0]) for u in report.uncommitted] == [
        ("news.raw.dlq[0]@10..19", 10, "CommitFailedError")
    ]
    broker.before_poll = None
    assert (await dlq_ops.replay_report(SETTINGS, TOPIC)).replayed == 20  # 10 to 19 again, as reported


def test_the_cli_lists_records_replayed_but_not_committed_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from services.cli.dlq import app

    report = dlq_ops.ReplayReport(
        replayed=20, uncommitted=[dlq_ops.Uncommitted(DLQ, 0, 10, 19, "CommitFailedError: rebalanced")]
    )

    async def replay_report(*args: Any) -> dlq_ops.ReplayReport:
        return report

    monkeypatch.setattr(dlq_ops, "replay_report", replay_report)
    res = CliRunner().invoke(app, ["replay", TOPIC])
    assert res.exit_code == 1
    assert "re-injected 20 records" in res.stdout
    assert "replayed, not committed: news.raw.dlq[0]@10..19 (10 offsets): CommitFailedError" in res.stderr
