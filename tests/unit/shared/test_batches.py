"""The sink consume loop under a rebalance while a batch is being retried, on a fake
consumer that behaves as aiokafka 0.14 does: ``pause`` marks the current assignment, and
a rebalance hands out a new, unpaused assignment whose positions restart at the
committed offsets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from shared.kafka.batches import BatchPolicy, RetryableError, StopAfterBatch, run_batches

TP = TopicPartition("t", 0)


class Rec:
    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset = "t", 0, offset


class FakeConsumer:
    def __init__(self, n: int, rebalance_at_call: int, keeps_partition: bool = True) -> None:
        self.log, self.pos, self.committed = list(range(n)), 0, 0
        self.paused, self.calls, self.assigned = False, 0, {TP}
        self.rebalance_at_call, self.keeps_partition = rebalance_at_call, keeps_partition
        self.commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused = self.paused or TP in tps

    def resume(self, *tps: TopicPartition) -> None:
        self.paused = self.paused and TP not in tps

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.pos = offset

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
        self.calls += 1
        if self.calls == self.rebalance_at_call:
            self.paused, self.pos = False, self.committed
            if not self.keeps_partition:
                self.assigned = set()
        await asyncio.sleep(0)
        if self.paused or TP not in self.assigned or self.pos >= len(self.log):
            return {}
        out = [Rec(o) for o in self.log[self.pos : self.pos + (max_records or 2)]]
        self.pos += len(out)
        return {TP: out}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)
        self.committed = offsets[TP]


def _run(consumer: FakeConsumer, failures: int, seen: list[int], stop_after: int = 200) -> None:
    left = [failures]
    stop = asyncio.Event()

    async def handler(records: Any) -> None:
        if left[0]:
            left[0] -= 1
            raise RetryableError("database down")
        seen.extend(r.offset for r in records)
        if max(seen) >= len(consumer.log) - 1:
            stop.set()

    async def main() -> None:
        task = asyncio.create_task(
            run_batches(consumer, handler, policy=BatchPolicy(max_batch=2, initial_backoff_s=0.001), stop=stop)
        )
        for _ in range(stop_after):
            if stop.is_set():
                break
            await asyncio.sleep(0.001)
        stop.set()
        await task

    asyncio.run(main())


def test_a_rebalance_while_a_batch_is_retried_loses_no_record() -> None:
    """Before: the poll that keeps the group membership returned the records of the new,
    unpaused assignment and dropped them; the batch then committed past them."""
    consumer = FakeConsumer(10, rebalance_at_call=3)
    seen: list[int] = []
    _run(consumer, failures=4, seen=seen)
    assert sorted(set(seen)) == list(range(10)), seen
    assert consumer.committed == 10


def test_a_batch_whose_partition_a_rebalance_took_is_left_uncommitted() -> None:
    consumer = FakeConsumer(10, rebalance_at_call=3, keeps_partition=False)
    seen: list[int] = []
    _run(consumer, failures=4, seen=seen, stop_after=50)
    assert seen == [] and consumer.commits == []  # the new owner re-reads from offset 0


def test_a_handler_that_stops_after_its_effect_has_the_batch_committed_first() -> None:
    """A sink's dead-letter guard trips after the batch's dead letters are written: the
    batch is committed before the error ends the loop, so a restart does not write them
    again."""
    consumer = FakeConsumer(6, rebalance_at_call=0)

    async def handler(records: Any) -> None:
        if records[0].offset == 2:
            raise StopAfterBatch("too many dead letters")

    async def main() -> None:
        await run_batches(consumer, handler, policy=BatchPolicy(max_batch=2), stop=asyncio.Event())

    with pytest.raises(StopAfterBatch):
        asyncio.run(main())
    assert consumer.commits == [{TP: 2}, {TP: 4}]
