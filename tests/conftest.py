"""Shared fixtures. Integration tests use the real local stack (``tonewatch stack up``)
with unique topics, consumer groups and a fresh database per test session."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tw_testing import fresh_database

from shared import logs
from shared.config import KafkaSettings, PostgresSettings, RedisSettings, ServiceSettings
from shared.topics import Topics

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def topics(unique: str) -> Topics:
    return Topics(prefix=f"t{unique}.")


@pytest.fixture(scope="session")
def kafka_settings() -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=os.environ.get("TW_TEST_KAFKA", "127.0.0.1:19092"))


@pytest.fixture(scope="session")
def redis_settings() -> RedisSettings:
    from pydantic import SecretStr

    return RedisSettings(url=SecretStr(os.environ.get("TW_TEST_REDIS", "redis://127.0.0.1:16379/0")))


@pytest.fixture(scope="session")
def pg_settings() -> Iterator[PostgresSettings]:
    """A fresh, migrated database for this test session."""
    with fresh_database() as settings:
        yield settings


@pytest.fixture
def service_settings(
    kafka_settings: KafkaSettings, pg_settings: PostgresSettings, redis_settings: RedisSettings, topics: Topics
) -> Callable[..., Any]:
    """Build a service's settings class against the test stack, with unique topics."""

    def make(cls: type[ServiceSettings] = ServiceSettings, **overrides: Any) -> Any:
        return cls(
            environment="test",
            kafka=kafka_settings,
            postgres=pg_settings,
            redis=redis_settings,
            topics=topics,
            startup_deadline_s=20,
            **overrides,
        )

    return make


@pytest.fixture
async def sessions(pg_settings: PostgresSettings) -> AsyncIterator[Any]:
    from shared.db.session import make_engine, make_sessionmaker

    engine = make_engine(pg_settings)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with tiny random sentiment and intent models (promoted)."""
    from tiny_models import build_tiny_registry

    return build_tiny_registry(tmp_path_factory.mktemp("models"))


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Restore the root logger's handlers and level after a test that configures logging."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    logs.stop_flushing()
    root.handlers[:] = handlers
    root.setLevel(level)
