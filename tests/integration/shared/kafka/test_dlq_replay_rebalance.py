"""`tonewatch dlq replay` through consumer group rebalances on the real broker: a group
member leaving mid-replay (the replay is assigned partitions it had not seen), and two
replays of the same DLQ in the same group at once. Each dead letter must be replayed
exactly once, nothing may raise, and the group must end committed at every partition's end.

The moments are forced, not timed: the hooks hold the replay's next poll (or its records
just fetched) until the rebalance has reached it, so the rebalance lands mid-replay on
every run."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.config import KafkaSettings
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics, make_consumer, make_producer
from shared.kafka.dlq import FailedRecord, dlq_headers
from shared.topics import Topics
from tests.tw_testing import wait_until

pytestmark = pytest.mark.integration

PARTITIONS = 4


async def _dead_letters(settings: KafkaSettings, topic: str, n: int, pad: int = 2_000) -> list[bytes]:
    """``n`` dead letters of ``topic``, round-robin over the DLQ's partitions (padded so
    that a fetch does not bring a whole partition at once)."""
    producer = make_producer(settings, client_id="test")
    await producer.start()
    try:
        values = [f"dl-{i:05d}".encode() + b"." * pad for i in range(n)]
        futures = []
        for i, value in enumerate(values):
            key = f"k{i}".encode()
            headers = dlq_headers(FailedRecord(topic, 0, i, key, value, [], "E", "bad"), "classifier")
            futures.append(
                await producer.send(Topics.dlq(topic), value, key=key, headers=headers, partition=i % PARTITIONS)
            )
        await asyncio.gather(*futures)
        return values
    finally:
        await producer.stop()


async def _replayed(settings: KafkaSettings, topic: str, n: int, group: str) -> list[bytes]:
    """What reached ``topic``: the first ``n`` records, then whatever else comes within a second."""
    consumer = make_consumer(settings, topic, group_id=group, client_id="test")
    await consumer.start()
    try:
        got: list[bytes] = []
        async with asyncio.timeout(60):
            while len(got) < n:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got += [r.value or b"" for r in records]
        got += [r.value or b"" for records in (await consumer.getmany(timeout_ms=1000)).values() for r in records]
    finally:
        await consumer.stop()
    return got


async def _committed_and_ends(settings: KafkaSettings, dlq: str, group: str) -> tuple[dict[int, int], dict[int, int]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    reader = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await reader.start()
    try:
        ends = await reader.end_offsets([TopicPartition(dlq, p) for p in range(PARTITIONS)])
    finally:
        await reader.stop()
    committed = {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == dlq}
    return committed, {tp.partition: off for tp, off in ends.items()}


def _check_once(got: list[bytes], values: list[bytes]) -> None:
    twice = sorted(v.rstrip(b".").decode() for v, n in Counter(got).items() if n > 1)
    missing = sorted(v.rstrip(b".").decode() for v in set(values) - set(got))  # names only, not 100 kB
    assert (len(twice), twice[:5], len(missing), missing[:5]) == (0, [], 0, [])
    assert sorted(got) == sorted(values)


def _hook(
    monkeypatch: pytest.MonkeyPatch,
    *,
    before_poll: Callable[[AIOKafkaConsumer], Any] | None = None,
    after_poll: Callable[[AIOKafkaConsumer, dict[TopicPartition, list[Any]]], Any] | None = None,
    after_commit: Callable[[AIOKafkaConsumer], Any] | None = None,
    group: str,
) -> None:
    """Run the callbacks around the replay consumers' polls and commits (consumers of other groups untouched)."""
    real_getmany, real_commit = AIOKafkaConsumer.getmany, AIOKafkaConsumer.commit

    async def getmany(self: AIOKafkaConsumer, *args: Any, **kwargs: Any) -> Any:
        if self._group_id != group:
            return await real_getmany(self, *args, **kwargs)
        if before_poll is not None:
            await before_poll(self)
        batch = await real_getmany(self, *args, **kwargs)
        if after_poll is not None:
            await after_poll(self, batch)
        return batch

    async def commit(self: AIOKafkaConsumer, *args: Any, **kwargs: Any) -> None:
        await real_commit(self, *args, **kwargs)
        if self._group_id == group and after_commit is not None:
            await after_commit(self)

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", getmany)
    monkeypatch.setattr(AIOKafkaConsumer, "commit", commit)


class _Member(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.assigned: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.assigned = set()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.assigned = set(assigned)


async def test_partitions_assigned_mid_replay_are_replayed_once(
    kafka_settings: KafkaSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another member of the replay group holds half the DLQ's partitions when the replay
    starts and leaves after its first commit: the replay is then assigned partitions it
    took no end offset for (a KeyError before) and must replay them too, once each."""
    topic, group = f"t{unique}.news.raw", f"g{unique}.dlq-replay"
    dlq = Topics.dlq(topic)
    await ensure_topics(kafka_settings, [topic], partitions=1)
    await ensure_topics(kafka_settings, [dlq], partitions=PARTITIONS)
    values = await _dead_letters(kafka_settings, topic, PARTITIONS * 100)
    monkeypatch.setattr(dlq_ops, "REPLAY_GROUP", group)
    monkeypatch.setattr(dlq_ops, "REPLAY_CHUNK", 20)

    member = _Member()
    other = AIOKafkaConsumer(
        bootstrap_servers=kafka_settings.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    other.subscribe([dlq], listener=member)
    await other.start()
    left = asyncio.Event()
    replay_partitions: list[int] = []
    try:
        await wait_until(lambda: len(member.assigned) == PARTITIONS)  # it holds them all, for now

        async def after_commit(replay: AIOKafkaConsumer) -> None:
            if not left.is_set():
                replay_partitions.append(len(replay.assignment()))
                left.set()
                await other.stop()  # leaves the group: a rebalance gives the replay every partition

        async def before_poll(replay: AIOKafkaConsumer) -> None:
            if left.is_set():  # the rebalance reaches the replay mid-replay, on every run
                await wait_until(lambda: len(replay.assignment()) == PARTITIONS, timeout=60)

        _hook(monkeypatch, before_poll=before_poll, after_commit=after_commit, group=group)
        report = await dlq_ops.replay_report(kafka_settings, topic)
    finally:
        await other.stop()
    assert replay_partitions and replay_partitions[0] < PARTITIONS  # it started with some of them only
    got = await _replayed(kafka_settings, topic, len(values), f"g{unique}.check")
    _check_once(got, values)  # each once
    committed, ends = await _committed_and_ends(kafka_settings, dlq, group)
    assert committed == ends == {p: len(values) // PARTITIONS for p in range(PARTITIONS)}
    assert (report.replayed, report.failed, report.uncommitted) == (len(values), [], [])


async def test_two_replays_of_the_same_dlq_replay_each_dead_letter_once(
    kafka_settings: KafkaSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second replay of the same DLQ starts while the first runs (same group): the group
    rebalances while the first is part way through a chunk (records fetched, not yet
    sent), and again when one of them ends and the other is given its partitions. Between
    them every dead letter is replayed exactly once, neither raises, and every partition
    ends committed. (100 kB dead letters: a fetch brings a few per partition, so a chunk
    takes several polls.)"""
    topic, group = f"t{unique}.news.raw", f"g{unique}.dlq-replay"
    dlq = Topics.dlq(topic)
    await ensure_topics(kafka_settings, [topic], partitions=1)
    await ensure_topics(kafka_settings, [dlq], partitions=PARTITIONS)
    values = await _dead_letters(kafka_settings, topic, PARTITIONS * 60, pad=100_000)
    monkeypatch.setattr(dlq_ops, "REPLAY_GROUP", group)
    monkeypatch.setattr(dlq_ops, "REPLAY_CHUNK", 20)

    first: list[AIOKafkaConsumer] = []
    second: list[asyncio.Task[dlq_ops.ReplayReport]] = []
    in_hand: set[int] = set()  # partitions the first replay fetched from since its last commit
    held: list[set[int]] = []

    async def after_commit(replay: AIOKafkaConsumer) -> None:
        if not first:
            first.append(replay)
            second.append(asyncio.create_task(dlq_ops.replay_report(kafka_settings, topic)))
        if replay is first[0]:
            in_hand.clear()

    async def after_poll(replay: AIOKafkaConsumer, batch: dict[TopicPartition, list[Any]]) -> None:
        if first and replay is first[0]:
            in_hand.update(tp.partition for tp in batch)

    async def before_poll(replay: AIOKafkaConsumer) -> None:
        # the first replay, part way through a chunk, polls no more until the second
        # replay's joining has reached it: it holds records of partitions it may lose
        if first and replay is first[0] and in_hand and not held:
            held.append(set(in_hand))
            await wait_until(lambda: len(replay.assignment()) < PARTITIONS, timeout=60)

    _hook(monkeypatch, before_poll=before_poll, after_poll=after_poll, after_commit=after_commit, group=group)
    try:
        reports = [await dlq_ops.replay_report(kafka_settings, topic)]
        assert second, "the second replay never started"
        reports.append(await second[0])
    finally:
        if second and not second[0].done():
            second[0].cancel()
            await asyncio.gather(second[0], return_exceptions=True)
    assert held  # the first replay held fetched records through the rebalance
    got = await _replayed(kafka_settings, topic, len(values), f"g{unique}.check")
    _check_once([v.rstrip(b".") for v in got], [v.rstrip(b".") for v in values])  # each once across both
    committed, ends = await _committed_and_ends(kafka_settings, dlq, group)
    assert committed == ends == {p: len(values) // PARTITIONS for p in range(PARTITIONS)}
    assert sum(r.replayed for r in reports) == len(values) and all(r.replayed for r in reports)  # both worked
    assert [(r.failed, r.uncommitted) for r in reports] == [([], []), ([], [])]
