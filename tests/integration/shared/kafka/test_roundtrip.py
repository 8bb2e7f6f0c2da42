"""Produce to and consume from the real broker; a faust agent round trip."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shared.config import KafkaSettings
from shared.kafka.clients import ensure_topics, make_consumer, make_producer

pytestmark = pytest.mark.integration


async def test_produce_consume_roundtrip(kafka_settings: KafkaSettings, unique: str) -> None:
    topic = f"t{unique}.roundtrip"
    await ensure_topics(kafka_settings, [topic], partitions=1)
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, f"m{i}".encode(), key=b"k")
    finally:
        await producer.stop()
    consumer = make_consumer(kafka_settings, topic, group_id=f"g{unique}", client_id="test")
    await consumer.start()
    try:
        got: list[bytes] = []
        async with asyncio.timeout(30):
            while len(got) < 10:
                batch = await consumer.getmany(timeout_ms=500)
                got += [r.value for rs in batch.values() for r in rs if r.value is not None]
        assert got == [f"m{i}".encode() for i in range(10)]
    finally:
        await consumer.stop()


FAUST_APP = textwrap.dedent(
    """
    import faust, os, sys
    app = faust.App(os.environ["APP_ID"], broker="kafka://" + os.environ["BOOTSTRAP"], value_serializer="raw",
                    web_enabled=False, datadir=os.environ["DATADIR"], consumer_auto_offset_reset="earliest")
    src = app.topic(os.environ["SRC"], value_serializer="raw")
    dst = app.topic(os.environ["DST"], value_serializer="raw")

    @app.agent(src)
    async def upper(stream):
        async for value in stream:
            await dst.send(value=value.upper())

    if __name__ == "__main__":
        worker = faust.Worker(app, loglevel="WARNING", quiet=True)
        worker.execute_from_commandline()
    """
)


async def test_faust_agent_roundtrip(kafka_settings: KafkaSettings, unique: str, tmp_path: Path) -> None:
    src, dst = f"t{unique}.faust-in", f"t{unique}.faust-out"
    await ensure_topics(kafka_settings, [src, dst], partitions=1)
    script = tmp_path / "app.py"
    script.write_text(FAUST_APP)
    env = dict(
        os.environ,
        APP_ID=f"faust-{unique}",
        BOOTSTRAP=kafka_settings.bootstrap_servers,
        SRC=src,
        DST=dst,
        DATADIR=str(tmp_path / "data"),
    )
    log = (tmp_path / "faust.log").open("wb")
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=log, stderr=subprocess.STDOUT)
    producer = make_producer(kafka_settings, client_id="test")
    consumer = make_consumer(kafka_settings, dst, group_id=f"g{unique}", client_id="test")
    await producer.start()
    await consumer.start()
    try:
        await producer.send_and_wait(src, b"hello faust")
        async with asyncio.timeout(60):
            got: list[bytes] = []
            while not got:
                batch = await consumer.getmany(timeout_ms=500)
                got = [r.value for rs in batch.values() for r in rs if r.value is not None]
        assert got == [b"HELLO FAUST"]
    finally:
        await producer.stop()
        await consumer.stop()
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
