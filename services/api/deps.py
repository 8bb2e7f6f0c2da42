"""The API's external dependencies, built from settings without connecting.

PostgreSQL connects on the first query, Redis on the first command, and the Kafka
producer is started on the first ``POST /v1/events`` (so a read-only API runs
while Kafka is down, and ``/readyz`` says so).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from fastapi import Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.alerter.netguard import AddressPolicy
from services.api.config import ApiSettings
from shared.db.session import make_engine, make_sessionmaker
from shared.inference.registry import Registry
from shared.kafka.clients import make_producer

SERVICE = "api"


@dataclass
class Deps:
    """Handles the routes use. ``aclose()`` releases them."""

    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    registry: Registry
    new_producer: Callable[[], AIOKafkaProducer]
    engine: AsyncEngine | None = None
    _producer: AIOKafkaProducer | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def producer(self) -> AIOKafkaProducer:
        """The shared idempotent producer, started on first use."""
        async with self._lock:
            if self._producer is None:
                producer = self.new_producer()
                try:
                    await producer.start()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def aclose(self) -> None:
        """Stop the producer, close Redis and dispose of the engine."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()
        await self.redis.aclose()
        if self.engine is not None:
            await self.engine.dispose()


def make_deps(settings: ApiSettings) -> Deps:
    """Dependencies from settings; nothing connects yet."""
    engine = make_engine(settings.postgres)
    return Deps(
        sessions=make_sessionmaker(engine),
        redis=Redis.from_url(settings.redis.url.get_secret_value(), socket_connect_timeout=2, socket_timeout=2),
        registry=Registry(settings.models_dir),
        new_producer=lambda: make_producer(settings.kafka, client_id=SERVICE),
        engine=engine,
    )


def get_deps(request: Request) -> Deps:
    """FastAPI dependency: the app's :class:`Deps`."""
    deps: Deps = request.app.state.deps
    return deps


def get_settings(request: Request) -> ApiSettings:
    """FastAPI dependency: the app's settings."""
    settings: ApiSettings = request.app.state.settings
    return settings


def get_webhook_policy(request: Request) -> AddressPolicy:
    """FastAPI dependency: the internal networks webhook URLs may name when a rule is
    saved (the alerter's ``TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS``)."""
    policy: AddressPolicy = request.app.state.webhook_policy
    return policy
