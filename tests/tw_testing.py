"""Helpers for tests (importable: ``from tw_testing import wait_until``)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.config import PostgresSettings, ServiceSettings
from shared.events import AlertEvent, RawNews, Score, ScoredEvent


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


async def committed_offsets(settings: ServiceSettings, group: str) -> dict[TopicPartition, int]:
    """The offsets ``group`` has committed, per partition (none: empty)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def scored_chat(mid: str, intent_label: str, conversation: str) -> bytes:
    """A neutral chat on text.scored whose intent is ``intent_label`` at 0.95."""
    now = datetime.now(UTC)
    intent = Score(label=intent_label, confidence=0.95, probs={intent_label: 0.95}, model="m", version="v1")
    sentiment = Score(label="neutral", confidence=0.9, probs={"neutral": 0.9}, model="m", version="v1")
    return ScoredEvent(
        id=mid,
        stream="chat",
        event_time=now,
        received_time=now,
        text="my card was declined",
        sentiment=sentiment,
        intent=intent,
        conversation_id=conversation,
    ).to_bytes()


def scored_news(e: RawNews) -> ScoredEvent:
    """``e`` as the classifier would pass it on (neutral, tagged ``_all``), for the aggregator's ledger."""
    probs = {"negative": 0.1, "neutral": 0.8, "positive": 0.1}
    score = Score(label="neutral", confidence=0.8, probs=probs, model="m", version="v1")
    return ScoredEvent(
        id=e.id,
        stream="news",
        event_time=e.event_time,
        received_time=e.event_time,
        text=e.text,
        entities=["_all"],
        sentiment=score,
    )


BASE_PG = "postgresql+asyncpg://tonewatch:tonewatch@127.0.0.1:15432"
"""The test PostgreSQL server (the local stack's), without a database."""


async def _admin_exec(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(BASE_PG.replace("postgresql+asyncpg", "postgresql") + "/tonewatch")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_database() -> Iterator[PostgresSettings]:
    """A new, migrated database on the test server, dropped afterwards (``WITH (FORCE)``)."""
    from pydantic import SecretStr

    from shared.db.migrate import upgrade

    name = f"tw_test_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin_exec(f'CREATE DATABASE "{name}"'))
    try:
        settings = PostgresSettings(url=SecretStr(f"{BASE_PG}/{name}"))
        upgrade(settings)
        yield settings
    finally:
        asyncio.run(_admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class RecordingProducer:
    """Records what it is given, acknowledging at once (pure logic: no broker)."""

    def __init__(self) -> None:
        self.values: list[bytes] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        self.values.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def registry_with_promoted(tmp_path: Any, marker: bytes) -> Any:
    """A model registry under ``tmp_path`` holding a stand-in ``sentiment/v1`` (files that
    only need to hash, not load), its ``PROMOTED`` marker written as ``marker``."""
    from shared.inference.registry import Registry

    reg = Registry(tmp_path / "models")
    (tmp_path / "tokenizer.json").write_bytes(b'{"model": {}}')
    (tmp_path / "model.int8.onnx").write_bytes(b"int8")
    files = {name: tmp_path / name for name in ("tokenizer.json", "model.int8.onnx")}
    reg.register("sentiment", "v1", {"name": "t", "max_length": 32, "created_at": "2026-01-02"}, files=files)
    (reg.root / "sentiment" / "PROMOTED").write_bytes(marker)
    return reg


@asynccontextmanager
async def app_client_known_key(monkeypatch: Any, info: Any) -> AsyncIterator[Any]:
    """An httpx client of the API app (``environment="test"``, connected to nothing) whose
    requests carry a well-formed key that :func:`services.api.auth.verify_key` takes for
    ``info`` (a ``KeyInfo``): for requests refused before any query or send."""
    import httpx

    from services.api import auth
    from services.api.app import build_app
    from services.api.config import ApiSettings
    from services.api.deps import make_deps

    async def known_key(*_: object) -> Any:
        return info

    monkeypatch.setattr(auth, "verify_key", known_key)
    settings = ApiSettings(environment="test")
    deps = make_deps(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(settings, deps)),
            base_url="http://t",
            headers={"X-API-Key": "tw_abcdefgh_" + "a" * 43},
        ) as client:
            yield client
    finally:
        await deps.aclose()


ALERT_AT = datetime(2031, 3, 9, 14, 30, tzinfo=UTC)


def alert_event(**fields: Any) -> AlertEvent:
    """An open alert about ACME fired at :data:`ALERT_AT` (id ``al-123``, no explanation);
    ``fields`` replace any of its fields."""
    base: dict[str, Any] = {
        "id": "al-123",
        "rule_id": 7,
        "rule_name": "watchlist-negative-spike",
        "entity": "ACME",
        "stream": "news",
        "severity": "critical",
        "status": "open",
        "window_start": ALERT_AT,
        "window_end": ALERT_AT,
        "fired_at": ALERT_AT,
        "explanation": {},
    }
    return AlertEvent(**{**base, **fields})


def rule_spec(channels: list[dict[str, Any]], context: Any = None) -> Any:
    """A valid rule over every entity with ``channels``, validated (with ``context``, as
    :func:`services.alerter.rules.rule_context` builds it, where given)."""
    from services.alerter.rules import RuleSpec

    fields = {
        "name": "r",
        "scope": {"all_entities": True},
        "window_s": 300,
        "min_volume": 3,
        "abs_threshold": 0.6,
        "z_threshold": 1.5,
        "cooldown_s": 600,
        "resolve_after_s": 300,
        "channels": channels,
    }
    return RuleSpec.model_validate(fields, context=context)
