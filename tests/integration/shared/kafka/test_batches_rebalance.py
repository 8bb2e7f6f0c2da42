"""The sink batch loop through a real rebalance on the broker: a second consumer joins
the group while the first retries a batch through an outage. Nothing may be lost and
the group must end committed at the end of every partition."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared.config import KafkaSettings
from shared.kafka.batches import BatchPolicy, RetryableError, run_batches
from shared.kafka.clients import ensure_topics, make_consumer, make_producer
from tests.tw_testing import wait_until

pytestmark = pytest.mark.integration

PARTITIONS = 4
POLICY = BatchPolicy(max_batch=5, max_wait_ms=100, initial_backoff_s=0.2, max_backoff_s=0.5)


class Sink:
    """A handler that fails while ``outage`` is set, as a sink does while PostgreSQL is down."""

    def __init__(self, outage: asyncio.Event) -> None:
        self.outage = outage
        self.handled: list[str] = []
        self.retries = 0

    async def handle(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        if self.outage.is_set():
            raise RetryableError("database down")
        self.handled += [r.value.decode() for r in records if r.value is not None]

    def retried(self, _exc: BaseException) -> None:
        self.retries += 1


async def _produce(settings: KafkaSettings, topic: str, prefix: str, n: int) -> list[str]:
    producer = make_producer(settings, client_id="test")
    await producer.start()
    try:
        values = [f"{prefix}{i}" for i in range(n)]
        for i, value in enumerate(values):
            await producer.send_and_wait(topic, value.encode(), partition=i % PARTITIONS)
        return values
    finally:
        await producer.stop()


async def test_a_rebalance_while_a_batch_is_retried_loses_nothing(kafka_settings: KafkaSettings, unique: str) -> None:
    topic, group = f"t{unique}.rebalance", f"g{unique}"
    await ensure_topics(kafka_settings, [topic], partitions=PARTITIONS)
    sent = await _produce(kafka_settings, topic, "before-", 40)

    outage = asyncio.Event()
    outage.set()
    sinks = {name: Sink(outage) for name in ("a", "b")}
    consumers: dict[str, AIOKafkaConsumer] = {}
    stops = {name: asyncio.Event() for name in sinks}
    tasks: dict[str, asyncio.Task[None]] = {}

    async def start(name: str) -> None:
        consumer = make_consumer(
            kafka_settings, topic, group_id=group, client_id=name, max_poll_records=POLICY.max_batch
        )
        await consumer.start()
        consumers[name] = consumer
        sink = sinks[name]
        tasks[name] = asyncio.create_task(
            run_batches(consumer, sink.handle, policy=POLICY, stop=stops[name], on_retry=sink.retried)
        )

    try:
        await start("a")
        await wait_until(lambda: sinks["a"].retries >= 2, timeout=30)
        before_join = sinks["a"].retries
        await start("b")

        def split() -> bool:
            mine, theirs = consumers["a"].assignment(), consumers["b"].assignment()
            return bool(mine) and bool(theirs) and not mine & theirs and len(mine | theirs) == PARTITIONS

        await wait_until(split, timeout=60)
        # More records while both still fail, for the new assignment's fetches to find.
        sent += await _produce(kafka_settings, topic, "during-", 40)
        await wait_until(
            lambda: sinks["a"].retries >= before_join + 4 and sinks["b"].retries >= 2,
            timeout=30,
        )
        outage.clear()

        handled = lambda: set(sinks["a"].handled) | set(sinks["b"].handled)  # noqa: E731
        await wait_until(lambda: set(sent) <= handled(), timeout=60)
        assert handled() == set(sent)

        ends = await consumers["a"].end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])

        async def committed_at_end() -> bool:
            for tp, end in ends.items():
                owner = consumers["a"] if tp in consumers["a"].assignment() else consumers["b"]
                if await owner.committed(tp) != end:
                    return False
            return True

        await wait_until(committed_at_end, timeout=30)
        for name, task in tasks.items():
            assert not task.done(), f"consumer {name} ended: {task.exception() if task.done() else ''}"
    finally:
        for name in tasks:
            stops[name].set()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        for consumer in consumers.values():
            await consumer.stop()
