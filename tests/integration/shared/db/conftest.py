"""Fixtures for the migration tests: a scratch database of their own, next to the
session's migrated one, so that a test can upgrade, downgrade or break it freely."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import NamedTuple

import asyncpg
import pytest
from pydantic import SecretStr

from shared.config import PostgresSettings


class Scratch(NamedTuple):
    """A new database: its settings (SQLAlchemy URL) and its asyncpg URL."""

    settings: PostgresSettings
    url: str


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def scratch(pg_settings: PostgresSettings) -> Iterator[Scratch]:
    """A new, empty (unmigrated) database on the test server, dropped after the test
    (WITH (FORCE): connections a failed test left open do not keep it)."""
    url = pg_settings.url.get_secret_value()
    server, _, _ = url.rpartition("/")
    admin = url.replace("postgresql+asyncpg://", "postgresql://")  # the session's database
    name = f"tw_scratch_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield Scratch(
            PostgresSettings(url=SecretStr(f"{server}/{name}")),
            f"{server}/{name}".replace("postgresql+asyncpg://", "postgresql://"),
        )
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
