from __future__ import annotations

import pytest
from redis.asyncio import Redis

from shared.config import RedisSettings

pytestmark = pytest.mark.integration


async def test_redis_roundtrip(redis_settings: RedisSettings, unique: str) -> None:
    client = Redis.from_url(redis_settings.url.get_secret_value())
    try:
        assert await client.set(f"tw:test:{unique}", "v", nx=True, ex=30)
        assert not await client.set(f"tw:test:{unique}", "w", nx=True, ex=30)
        assert await client.get(f"tw:test:{unique}") == b"v"
    finally:
        await client.delete(f"tw:test:{unique}")
        await client.aclose()
