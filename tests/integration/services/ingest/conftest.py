"""Fixtures for the ``tonewatch ingest file`` tests: the command run as a child process
against the test's topics (prefix ``t{unique}.``), and the news it produced there."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from shared.config import KafkaSettings
from shared.events import RawNews
from shared.kafka.clients import make_consumer

Ingest = Callable[..., Awaitable[subprocess.CompletedProcess[str]]]
"""``await ingest(path, *options)``: ``tonewatch ingest file PATH --stream news *OPTIONS``."""
Records = Callable[[int], Awaitable[list[ConsumerRecord[bytes, bytes]]]]
Consumed = Callable[[int], Awaitable[list[RawNews]]]


@pytest.fixture
def ingest(kafka_settings: KafkaSettings, unique: str) -> Ingest:
    """Runs ``tonewatch ingest file`` on a path (``--stream news`` and any options given),
    producing to this test's topics; the completed process (text output) comes back."""
    env = {
        "TW_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "TW_TOPICS__PREFIX": f"t{unique}.",
        "PATH": "/usr/bin:/bin",
    }

    async def run(path: Path, *options: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "services", "ingest", "file", str(path), "--stream", "news", *options]
        return await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, env=env, timeout=120)

    return run


@pytest.fixture
def consumed_records(kafka_settings: KafkaSettings, unique: str) -> Records:
    """The records of this test's ``news.raw``: ``expected`` of them (30 s at most), then a
    second more to see none follow."""

    async def consume(expected: int) -> list[ConsumerRecord[bytes, bytes]]:
        topic = f"t{unique}.news.raw"
        consumer = make_consumer(kafka_settings, topic, group_id=f"g{unique}", client_id="test")
        await consumer.start()
        try:
            got: list[ConsumerRecord[bytes, bytes]] = []
            async with asyncio.timeout(30):
                while len(got) < expected:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        got += records
            for records in (await consumer.getmany(timeout_ms=1_000)).values():
                got += records
        finally:
            await consumer.stop()
        return got

    return consume


@pytest.fixture
def consumed(consumed_records: Records) -> Consumed:
    """The events of :func:`consumed_records`, in the order they were read."""

    async def consume(expected: int) -> list[RawNews]:
        return [RawNews.model_validate_json(r.value or b"") for r in await consumed_records(expected)]

    return consume
