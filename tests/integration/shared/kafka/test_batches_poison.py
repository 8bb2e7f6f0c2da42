"""Errors PostgreSQL really raises, classified by SQLSTATE; and the sink batch loop on the
real broker and database: records a table refuses for their content are dead-lettered to
the real DLQ with the database's reason, the rest of their batch stored, the batch committed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import KafkaSettings
from shared.kafka import dlq_ops
from shared.kafka.batches import BatchPolicy, _is_retryable, is_poison, run_batches, sqlstate
from shared.kafka.clients import ensure_with_dlqs, make_consumer, make_producer
from shared.kafka.dlq import DeadLetterWriter, RatioGuard
from tests.tw_testing import wait_until

pytestmark = pytest.mark.integration


async def _raised(sessions: async_sessionmaker[AsyncSession], *statements: str, **params: Any) -> BaseException:
    try:
        async with sessions.begin() as session:
            for statement in statements:
                await session.execute(text(statement), params)
    except Exception as exc:
        return exc
    raise AssertionError("no error")


async def test_errors_postgresql_raises_are_classified_by_sqlstate(sessions: Any, unique: str) -> None:
    table = f"poison_cls_{unique}"
    async with sessions.begin() as session:
        await session.execute(text(f"CREATE TABLE {table} (name varchar(64), n int CHECK (n >= 0))"))
    try:
        poison = {
            "22003": await _raised(sessions, "SELECT CAST(CAST(:v AS text) AS int)", v="2147483648"),
            "22P02": await _raised(sessions, "SELECT CAST(CAST(:v AS text) AS int)", v="abc"),
            "22001": await _raised(sessions, f"INSERT INTO {table} (name) VALUES (:v)", v="x" * 65),
            "23514": await _raised(sessions, f"INSERT INTO {table} (n) VALUES (-1)"),
            "22000": await _raised(sessions, "SELECT CAST(:v AS int8)", v=2**70),  # asyncpg refuses the argument
        }
        for state, exc in poison.items():
            assert sqlstate(exc) == state and is_poison(exc) and not _is_retryable(exc), (state, exc)
        cancelled = await _raised(sessions, "SET LOCAL statement_timeout = '10ms'", "SELECT pg_sleep(1)")
        async with sessions.begin() as holder:
            await holder.execute(text(f"LOCK TABLE {table}"))
            locked = await _raised(sessions, "SET LOCAL lock_timeout = '10ms'", f"SELECT * FROM {table}")
        missing = await _raised(sessions, f"SELECT * FROM {table}_missing")
        for state, exc in {"57014": cancelled, "55P03": locked, "42P01": missing}.items():
            assert sqlstate(exc) == state and not is_poison(exc) and _is_retryable(exc), (state, exc)
    finally:
        async with sessions.begin() as session:
            await session.execute(text(f"DROP TABLE {table}"))


async def test_records_a_table_refuses_are_dead_lettered_and_the_rest_stored_once(
    kafka_settings: KafkaSettings, sessions: Any, unique: str
) -> None:
    """One transaction per batch, as the sinks write: a negative ``n`` breaks a CHECK (23514),
    one past int range a cast (22003). Before, both were DBAPIErrors retried for ever."""
    topic, group, table = f"t{unique}.poison", f"g{unique}", f"poison_{unique}"
    await ensure_with_dlqs(kafka_settings, [topic])
    async with sessions.begin() as session:
        await session.execute(text(f"CREATE TABLE {table} (id text PRIMARY KEY, n int CHECK (n >= 0))"))
    insert = text(
        f"INSERT INTO {table} (id, n) SELECT * FROM unnest(CAST(:ids AS text[]), CAST(CAST(:ns AS text[]) AS int[])) "
        "ON CONFLICT DO NOTHING"
    )
    handled: list[list[int]] = []

    async def handle(records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        rows = [json.loads(r.value or b"{}") for r in records]
        async with sessions.begin() as session:
            await session.execute(insert, {"ids": [r["id"] for r in rows], "ns": [str(r["n"]) for r in rows]})
        handled.append([r.offset for r in records])

    ns = [1, 2, -1, 3, 2**31, 4]
    producer = make_producer(kafka_settings, client_id="test")
    consumer = make_consumer(kafka_settings, topic, group_id=group, client_id="test", max_poll_records=10)
    await producer.start()
    stop = asyncio.Event()
    try:
        for i, n in enumerate(ns):
            await producer.send(topic, json.dumps({"id": f"r{i}", "n": n}).encode(), key=b"k")
        await producer.flush()
        await consumer.start()
        dlq = DeadLetterWriter(producer, "test", RatioGuard(), stop=stop)
        policy = BatchPolicy(max_batch=10, max_wait_ms=1000, initial_backoff_s=0.2)
        task = asyncio.create_task(run_batches(consumer, handle, policy=policy, stop=stop, dead_letter=dlq.dead_letter))

        async def committed() -> bool:  # all six on the one partition their key chose
            offsets = [await consumer.committed(tp) for tp in consumer.assignment()]
            return len(ns) in offsets or task.done()

        await wait_until(committed, timeout=30)
        stop.set()
        await task
        letters = await dlq_ops.list_entries(kafka_settings, topic)
        async with sessions() as session:
            stored = dict((await session.execute(text(f"SELECT id, n FROM {table} ORDER BY id"))).tuples().all())
    finally:
        stop.set()
        await consumer.stop()
        await producer.stop()
        async with sessions.begin() as session:
            await session.execute(text(f"DROP TABLE IF EXISTS {table}"))
    assert stored == {"r0": 1, "r1": 2, "r3": 3, "r5": 4}
    assert sorted(offset for part in handled for offset in part) == [0, 1, 3, 5]  # each stored once
    reasons = {json.loads(e.value or b"{}")["n"]: e.meta.reason for e in letters if e.meta is not None}
    assert {e.meta.error_class for e in letters if e.meta is not None} == {"store"}
    assert set(reasons) == {-1, 2**31}
    assert reasons[-1].startswith("the database refused the record: SQLSTATE 23514: new row for relation")
    assert "SQLSTATE 22003" in reasons[2**31]
