"""A sink's batch retried through a PostgreSQL outage, a service stopped by a burst of bad
records, and dead letters counted (importable: ``from sink_outage import ...``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services_proc import log_tail, start_service, stop
from tw_testing import wait_until

from shared.config import ServiceSettings
from shared.kafka import dlq_ops
from shared.kafka.clients import make_producer
from shared.stack import manager
from shared.stack.settings import StackSettings


async def one_batch_during_postgres_outage(
    settings: ServiceSettings, service: str, log_dir: Path, topic: str, values: list[bytes]
) -> None:
    """With ``service`` consuming: PostgreSQL down, ``values`` sent together to one
    partition (one batch, given a long enough max wait), four retries seen in the
    service's log, PostgreSQL up again."""
    stack = StackSettings()
    await wait_until(lambda: f"{service} consuming" in log_tail(log_dir, service, 200_000), timeout=60)
    await asyncio.to_thread(manager.down, stack, only=["postgres"])
    try:
        await produce(settings, topic, values, key=b"one")
        await wait_until(lambda: log_tail(log_dir, service, 200_000).count("pausing and retrying") >= 4, timeout=30)
    finally:
        await asyncio.to_thread(manager.up, stack, only=["postgres"])


async def dead_letter_values(settings: ServiceSettings, topic: str, expected: int) -> list[bytes | None]:
    """The values in ``topic``'s DLQ once there are ``expected`` of them and a second
    more has passed, in which a second copy would show up (dead letters are written
    after the effect)."""

    limit = 2 * expected + 10  # room to see second copies

    async def enough() -> bool:
        return len(await dlq_ops.list_entries(settings.kafka, topic, limit)) >= expected

    await wait_until(enough, timeout=30)
    await asyncio.sleep(1)
    return [e.value for e in await dlq_ops.list_entries(settings.kafka, topic, limit)]


async def produce(settings: ServiceSettings, topic: str, values: list[bytes], key: bytes = b"k") -> None:
    """Send ``values`` to ``topic`` with one key (one partition, in order) and wait for the acks."""
    producer = make_producer(settings.kafka, client_id="test")
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def stops_on_a_burst_of_bad_records(
    service: str, settings: ServiceSettings, log_dir: Path, topic: str, bad: list[bytes], **env: str
) -> None:
    """``bad`` sent to ``topic``, then ``service`` started: more than its DLQ ratio of
    recent records fail, so it must stop by itself with code 1 and say why."""
    await produce(settings, topic, bad)
    proc = start_service(service, settings, log_dir, **env)
    try:
        code = await asyncio.to_thread(proc.wait, 90)
    finally:
        stop(proc)
    log = log_tail(log_dir, service, 200_000)
    assert code == 1 and "were dead-lettered" in log, log[-3000:]
