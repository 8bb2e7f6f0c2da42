"""Wait for dependencies at start-up: retry with backoff, log clearly, and give up
after a deadline with an error naming what was waited for."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient

from shared.config import KafkaSettings, PostgresSettings, RedisSettings

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]


class DependencyUnavailable(RuntimeError):
    """A dependency did not become healthy before the deadline."""


@dataclass(frozen=True)
class Dependency:
    name: str
    target: str
    check: Check


async def kafka_check(settings: KafkaSettings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=3_000)
    try:
        await asyncio.wait_for(admin.start(), timeout=5)
        await asyncio.wait_for(admin.list_topics(), timeout=5)
    finally:
        await admin.close()


async def postgres_check(settings: PostgresSettings) -> None:
    import asyncpg

    url = settings.url.get_secret_value().replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url, timeout=3)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


async def redis_check(settings: RedisSettings) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(settings.url.get_secret_value(), socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()


def kafka_dependency(settings: KafkaSettings) -> Dependency:
    return Dependency("Kafka", settings.bootstrap_servers, lambda: kafka_check(settings))


def postgres_dependency(settings: PostgresSettings) -> Dependency:
    return Dependency("PostgreSQL", settings.redacted_url(), lambda: postgres_check(settings))


def redis_dependency(settings: RedisSettings) -> Dependency:
    from urllib.parse import urlsplit

    parts = urlsplit(settings.url.get_secret_value())
    return Dependency("Redis", f"{parts.hostname}:{parts.port}", lambda: redis_check(settings))


async def wait_for(
    deps: Sequence[Dependency], *, deadline_s: float, initial_backoff_s: float = 0.25, max_backoff_s: float = 5.0
) -> None:
    """Wait until every dependency answers; raise :class:`DependencyUnavailable` after ``deadline_s``."""
    start = time.monotonic()
    for dep in deps:
        backoff = initial_backoff_s
        attempt = 0
        while True:
            attempt += 1
            try:
                await dep.check()
            except Exception as exc:
                elapsed = time.monotonic() - start
                if elapsed + backoff > deadline_s:
                    raise DependencyUnavailable(
                        f"gave up waiting for {dep.name} at {dep.target} after {elapsed:.1f}s "
                        f"({attempt} attempts); last error: {type(exc).__name__}: {exc}"
                    ) from exc
                log.warning(
                    "waiting for %s at %s (attempt %d, retry in %.1fs): %s",
                    dep.name,
                    dep.target,
                    attempt,
                    backoff,
                    type(exc).__name__,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max_backoff_s)
            else:
                log.info("%s at %s is up", dep.name, dep.target)
                break


def refuse_unmigrated(service: str, settings: PostgresSettings, *, deadline_s: float) -> bool:
    """Wait for PostgreSQL, then True (after a critical log line naming what to run) when
    its schema is not this release's: each service's entrypoint exits 2 on it."""
    from shared.db.migrate import database_revision, heads, schema_refusal

    asyncio.run(wait_for([postgres_dependency(settings)], deadline_s=deadline_s))
    needed = heads()  # a migration running: wait for it, within the start-up deadline
    refusal = schema_refusal(asyncio.run(database_revision(settings, wait_s=deadline_s, wanted=needed)), needed)
    if refusal:
        log.critical("%s cannot start: %s", service, refusal)
    return refusal is not None
