"""Helpers for tests (importable: ``from tw_testing import wait_until``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from shared.config import ServiceSettings


def env_for(settings: ServiceSettings, **extra: str) -> dict[str, str]:
    """Environment variables that make a child process use ``settings``."""
    env = dict(os.environ)
    env.update(
        {
            "TW_ENVIRONMENT": "test",
            "TW_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "TW_POSTGRES__URL": settings.postgres.url.get_secret_value(),
            "TW_REDIS__URL": settings.redis.url.get_secret_value(),
            "TW_TOPICS__PREFIX": settings.topics.prefix,
            "TW_LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


async def wait_until(predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll an (async) predicate until truthy; fail with a clear message at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = predicate()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


async def topic_records(settings: ServiceSettings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record in ``topic`` so far (no consumer group, nothing committed)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        found: list[ConsumerRecord[bytes, bytes]] = []
        while polled := await consumer.getmany(timeout_ms=1_000):
            found += [r for records in polled.values() for r in records]
        return found
    finally:
        await consumer.stop()
