"""The real stack: Kafka, PostgreSQL and Redis brought up by `tonewatch stack`.

The first tests use the default stack (``TW_STACK_*`` settings), start it when needed and
leave it running for the rest of the suite. The last test runs a private PostgreSQL and Redis
on free ports in a temporary state dir, to exercise restart, foreign ports and ``down``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from redis.asyncio import Redis
from typer.testing import CliRunner

from services.cli.stack import app
from shared.stack import manager
from shared.stack.settings import StackSettings, kafka_bootstrap, postgres_url, redis_url

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def stack() -> StackSettings:
    """The default stack, up and healthy."""
    settings = StackSettings()
    report = manager.up(settings)
    assert report.ok, report.to_dict()
    return settings


def test_up_twice_is_idempotent(stack: StackSettings) -> None:
    """``up`` on a running stack finds each component running and leaves it alone: the
    same pids, nothing started, nothing waited for until healthy."""
    first = manager.up(stack)
    said: list[str] = []
    second = manager.up(stack, said.append)
    assert first.ok and second.ok
    assert [c.pid for c in first.components] == [c.pid for c in second.components]
    assert all(c.pid is not None for c in second.components)
    for c in second.components:
        assert f"{c.name}: already running (pid {c.pid})" in said, said
    assert not [line for line in said if "started pid" in line or "healthy on" in line], said


def test_status_reports_each_component_healthy(stack: StackSettings) -> None:
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["components"]) == {"kafka", "postgres", "redis"}
    for name, port in (("kafka", stack.kafka_port), ("postgres", stack.postgres_port), ("redis", stack.redis_port)):
        component = data["components"][name]
        assert component["healthy"] and component["running"], component
        assert component["port"] == port
        assert isinstance(component["pid"], int)
        assert Path(component["log_file"]).is_file()


@pytest.mark.asyncio
async def test_kafka_produce_consume(stack: StackSettings) -> None:
    topic = f"test-stack-{uuid.uuid4().hex[:12]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap(stack), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, b"hello", key=b"k")
        partitions = await producer.partitions_for(topic)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap(stack),
        group_id=f"test-stack-{uuid.uuid4().hex[:12]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=60)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert (message.key, message.value, message.partition, message.offset) == (b"k", b"hello", meta.partition, 0)
    assert partitions == {0, 1, 2}  # auto-created with num.partitions=3


@pytest.mark.asyncio
async def test_postgres_accepts_a_query(stack: StackSettings) -> None:
    conn = await asyncpg.connect(postgres_url(stack, driver=None), timeout=10)
    try:
        row = await conn.fetchrow(
            "SELECT current_user AS u, current_database() AS d, 40 + 2 AS n, "
            "pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') AS may_end_autovacuum"
        )
    finally:
        await conn.close()
    assert row is not None
    assert (row["u"], row["d"], row["n"]) == (stack.postgres_user, stack.postgres_db, 42)
    assert row["may_end_autovacuum"]  # so test teardowns can DROP DATABASE ... WITH (FORCE)


@pytest.mark.asyncio
async def test_redis_ping(stack: StackSettings) -> None:
    async with Redis.from_url(redis_url(stack)) as client:
        assert await client.ping()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[StackSettings]:
    """PostgreSQL and Redis on free ports in a temporary state dir; reset afterwards."""
    settings = StackSettings(state_dir=tmp_path / "stack", postgres_port=_free_port(), redis_port=_free_port())
    yield settings
    manager.reset(settings)


def test_restart_foreign_port_and_down(private_stack: StackSettings) -> None:
    only = ("postgres", "redis")
    first = manager.up(private_stack, only=only)
    assert first.ok, first.to_dict()
    pids = {c.name: c.pid for c in first.components}

    # A crashed component is restarted; the healthy one is left alone.
    assert pids["redis"] is not None
    os.kill(pids["redis"], signal.SIGKILL)
    assert not manager.status(private_stack, only=only).ok
    again = manager.up(private_stack, only=only)
    assert again.ok, again.to_dict()
    new_pids = {c.name: c.pid for c in again.components}
    assert new_pids["postgres"] == pids["postgres"]
    assert new_pids["redis"] not in (None, pids["redis"])

    down = manager.down(private_stack, only=only)
    assert down.ok
    assert not any(c.running for c in manager.status(private_stack, only=only).components)
    assert not list((private_stack.state_dir / "run").glob("*.pid"))

    # A port held by someone else is reported, never taken over.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", private_stack.redis_port))
        squatter.listen()
        blocked = manager.up(private_stack, only=("redis",))
    assert not blocked.ok
    assert "already in use" in blocked.components[0].detail


def test_reset_removes_only_what_the_stack_created(tmp_path: Path) -> None:
    """A state dir pointed at a shared folder: reset removes the stack's data, logs and
    pid files there and leaves everything else. Before, it removed the folder whole."""
    state = tmp_path / "shared"
    (state / "projects").mkdir(parents=True)
    (state / "notes.txt").write_text("mine")
    settings = StackSettings(state_dir=state, redis_port=_free_port())
    try:
        assert manager.up(settings, only=("redis",)).ok
        assert (state / "redis").is_dir() and (state / "logs").is_dir()
    finally:
        manager.reset(settings)
    # stack.lock stays: an `up` waiting on it while reset runs keeps its lock
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt", "projects", "stack.lock"]


def test_a_postgres_dir_holding_other_files_is_refused(tmp_path: Path) -> None:
    """TW_STACK_POSTGRES_DIR is handed to the postgres user and holds the cluster: a
    folder with other files in it (``/tmp``, a home dir) is refused, not taken over."""
    pg = tmp_path / "pg"
    pg.mkdir()
    (pg / "notes.txt").write_text("mine")
    owner = pg.stat().st_uid
    settings = StackSettings(state_dir=tmp_path / "stack", postgres_dir=pg, postgres_port=_free_port())
    try:
        report = manager.up(settings, only=("postgres",))
    finally:
        manager.reset(settings)
    assert not report.ok
    assert "must name a directory of its own" in report.components[0].detail
    assert sorted(p.name for p in pg.iterdir()) == ["notes.txt"] and pg.stat().st_uid == owner
