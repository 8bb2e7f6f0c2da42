"""Fixtures for the API contract tests: the app on the real (per-session) database,
unique topics, an isolated Redis database, and keys of each scope."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.api import auth
from services.api.app import build_app
from services.api.config import ApiSettings
from services.api.deps import Deps, make_deps
from shared.config import RedisSettings

API_REDIS_DB = 13  # the API's tests keep their Redis keys away from the other suites


@pytest.fixture
def api_settings(service_settings: Callable[..., Any], tmp_path: Path) -> ApiSettings:
    settings: ApiSettings = service_settings(
        ApiSettings,
        models_dir=tmp_path / "models",
        sse_poll_interval_s=0.2,
        sse_heartbeat_s=1.0,
        readiness_timeout_s=5.0,
    )
    redis_url = settings.redis.url.get_secret_value().rsplit("/", 1)[0] + f"/{API_REDIS_DB}"
    return settings.model_copy(update={"redis": RedisSettings(url=SecretStr(redis_url))})


@pytest.fixture
async def deps(api_settings: ApiSettings) -> AsyncIterator[Deps]:
    d = make_deps(api_settings)
    yield d
    await d.aclose()


@pytest.fixture
async def client(api_settings: ApiSettings, deps: Deps) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(api_settings, deps)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as c:
        yield c


@pytest.fixture
def make_client(deps: Deps) -> Callable[[ApiSettings], httpx.AsyncClient]:
    """A client over an app built with other settings (same dependencies)."""

    def make(settings: ApiSettings) -> httpx.AsyncClient:
        app = build_app(settings, deps)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")

    return make


@pytest.fixture
async def keys(deps: Deps) -> dict[str, str]:
    """A fresh key per scope: ``{"read": "tw_...", "write": ..., "admin": ...}``."""
    out = {}
    for scope in auth.SCOPES:
        new = await auth.create_key(deps.sessions, f"test-{scope}", scope)
        out[scope] = new.key
    return out


async def _client_with(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    deps = make_deps(settings)
    try:
        app = build_app(settings, deps)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
            yield client
    finally:
        await deps.aclose()


@pytest.fixture
async def limited(api_settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose reads may take 0.3 s."""
    async for client in _client_with(api_settings.model_copy(update={"read_timeout_s": 0.3})):
        yield client


@pytest.fixture
async def unlimited(api_settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose reads may take far longer than the test waits."""
    async for client in _client_with(api_settings.model_copy(update={"read_timeout_s": 60.0})):
        yield client
