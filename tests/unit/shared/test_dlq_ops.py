"""``dlq_ops.replay`` against an in-memory broker (the real one: tests/integration/shared/kafka/test_dlq_ops.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError, OutOfOrderSequenceNumber

from shared.config import KafkaSettings
from shared.kafka import dlq_ops
from shared.kafka.dlq import FailedRecord, dlq_headers

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
    after_commit: Callable[[], None] | None = None

    def dead_letter(self, partition: int, value: bytes, *, timestamp: int = 1_000, **kw: Any) -> None:
        part = self.log.setdefault(partition, [])
        rec = FailedRecord(TOPIC, partition, len(part), b"k", value, [], "E", "bad", **kw)
        part.append(_Rec(partition, len(part), b"k", value, dlq_headers(rec, "classifier"), timestamp))


class _Consumer:
    def __init__(self, broker: _Broker) -> None:
        self.b = broker
        self.tps = {TopicPartition(DLQ, p) for p in range(broker.partitions)}
        self.pos = {tp: broker.committed.get(tp.partition, 0) for tp in self.tps}
        self._paused: set[TopicPartition] = set()

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    def assignment(self) -> set[TopicPartition]:
        return self.tps

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.b.log.get(tp.partition, [])) for tp in tps}

    async def position(self, tp: TopicPartition) -> int:
        return self.pos[tp]

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.b.committed.get(tp.partition)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.pos[tp] = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.pos[tp] = 0

    def pause(self, *tps: TopicPartition) -> None:
        self._paused.update(tps)

    def paused(self) -> set[TopicPartition]:
        return self._paused

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[_Rec]]:
        out: dict[TopicPartition, list[_Rec]] = {}
        n = max_records or 500
        for tp in sorted(self.tps - self._paused, key=lambda t: t.partition):
            recs = self.b.log.get(tp.partition, [])[self.pos[tp] : self.pos[tp] + n]
            if recs:
                out[tp] = recs
                self.pos[tp] += len(recs)
                n -= len(recs)
        return out

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
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
            fut.set_result(None)
        return fut


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> _Broker:
    b = _Broker()
    monkeypatch.setattr(dlq_ops, "make_consumer", lambda *a, **k: _Consumer(b))
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
    broker.dead_letter(0, b"with-header", timestamp=2_000, timestamp_ms=1_000)
    broker.dead_letter(0, b"older-dead-letter", timestamp=3_000)  # no tw.timestamp: the dead letter's
    assert await dlq_ops.replay(SETTINGS, TOPIC) == 2
    assert broker.source == [(b"with-header", 1_000), (b"older-dead-letter", 3_000)]
