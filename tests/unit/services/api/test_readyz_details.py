"""``/readyz`` is open to probes even when reads need a key: its checks name the
component and its state, never a host, port, database URL or the models' folder (the
Kafka bootstrap list, the redacted PostgreSQL URL and errors naming them were shown)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.api import routes_ops
from services.api.app import build_app
from services.api.config import ApiSettings
from services.api.deps import make_deps

HOST = "127.0.0.1"  # port 1: refused at once
SECRET = "s3cret-pw"


@pytest.fixture
def settings(tmp_path: Path) -> ApiSettings:
    return ApiSettings(
        environment="test",
        require_key_for_reads=True,
        readiness_timeout_s=5.0,
        kafka={"bootstrap_servers": f"{HOST}:1"},
        postgres={"url": f"postgresql+asyncpg://tonewatch:{SECRET}@{HOST}:1/tonewatch"},
        redis={"url": f"redis://:{SECRET}@{HOST}:1/0"},
        models_dir=tmp_path / "models",
    )


@pytest.fixture
async def client(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    deps = make_deps(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(settings, deps)), base_url="http://t"
        ) as c:
            yield c
    finally:
        await deps.aclose()


def assert_nothing_of_where(text: str, settings: ApiSettings) -> None:
    assert HOST not in text and SECRET not in text and "postgresql" not in text and "redis://" not in text
    assert str(settings.models_dir) not in text and "PROMOTED" not in text


async def test_failed_checks_name_the_component_and_state_only(
    client: httpx.AsyncClient, settings: ApiSettings
) -> None:
    r = await client.get("/readyz")  # no key: a probe
    assert r.status_code == 503, r.text
    assert_nothing_of_where(r.text, settings)
    checks = {c["name"]: c for c in r.json()["error"]["details"]}
    assert set(checks) == {"kafka", "postgres", "redis", "model:sentiment", "model:intent"}
    assert not any(c["ok"] for c in checks.values())
    for name in ("kafka", "postgres", "redis"):
        assert checks[name]["detail"].startswith(("unreachable (", "no answer within")), checks[name]
    assert "promoted" in checks["model:sentiment"]["detail"]  # as tests/integration/.../test_ops.py reads it


async def test_a_reachable_kafka_is_reachable_not_its_address(
    client: httpx.AsyncClient, settings: ApiSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def answers(*_: object) -> None:
        return None

    monkeypatch.setattr(routes_ops, "kafka_check", answers)
    r = await client.get("/readyz")
    assert_nothing_of_where(r.text, settings)
    checks = {c["name"]: c for c in r.json()["error"]["details"]}
    assert checks["kafka"] == {**checks["kafka"], "ok": True, "detail": "reachable"}


async def test_the_log_keeps_the_whole_error(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="tonewatch.api.ops")
    await client.get("/readyz")
    assert any("readiness check model:sentiment failed" in m for m in caplog.messages), caplog.messages
