"""Browser-test fixtures: the API on a real uvicorn port over the session database,
seeded with two days of trends, alerts, messages and routing volumes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from browser.seed import REDIS_DB, register_models, seed, unseed
from integration.services.api.helpers import serving
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.app import build_app
from services.api.config import ApiSettings
from services.api.deps import Deps, make_deps
from services.classifier.config import ClassifierSettings, status_field, status_key
from shared.config import RedisSettings


@pytest.fixture
async def dashboard(
    service_settings: Callable[..., Any], sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[dict[str, Any]]:
    """``{"url", "sessions", "rule_id", ...}`` of a running API with seeded data."""
    settings: ApiSettings = service_settings(ApiSettings, models_dir=tmp_path / "models", sse_poll_interval_s=0.5)
    url = settings.redis.url.get_secret_value().rsplit("/", 1)[0] + f"/{REDIS_DB}"
    settings = settings.model_copy(update={"redis": RedisSettings(url=SecretStr(url))})
    register_models(settings.models_dir, tmp_path)
    deps: Deps = make_deps(settings)
    group = ClassifierSettings.model_fields["group_id"].default
    key = status_key(settings.topics.prefix)
    status = {"provider": "CPUExecutionProvider", "variant": "int8", "device": "CPU (2 cores)"}
    seconds, micros = await deps.redis.time()  # statuses are aged by Redis's clock (60 s): a test takes seconds
    status |= {"group": group, "replica": "browser:1", "published_at": seconds + micros / 1e6}
    await deps.redis.hset(key, status_field(group, "browser:1"), json.dumps(status))
    await deps.redis.expire(key, 600)
    info = await seed(sessions)
    try:
        async with serving(build_app(settings, deps)) as base:
            yield {"url": base, "sessions": sessions, **info}
    finally:
        await unseed(sessions, info["routing_bucket"], info["rule_id"])
        await deps.redis.delete(key)
        await deps.aclose()
