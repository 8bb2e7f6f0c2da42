"""StackSettings defaults, environment overrides and the URL helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from shared.stack.settings import StackSettings, kafka_bootstrap, postgres_url, redis_url


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/dev")
    settings = StackSettings()
    assert settings.state_dir == Path("/home/dev/.cache/tonewatch/stack")
    assert (settings.kafka_port, settings.kafka_controller_port) == (19092, 19093)
    assert (settings.postgres_port, settings.redis_port) == (15432, 16379)
    assert settings.kafka_version.startswith("4.")
    assert settings.start_timeout_s == 90


def test_helpers_give_the_urls_the_project_uses() -> None:
    settings = StackSettings()
    assert kafka_bootstrap(settings) == "127.0.0.1:19092"
    assert postgres_url(settings) == "postgresql+asyncpg://tonewatch:tonewatch@127.0.0.1:15432/tonewatch"
    assert postgres_url(settings, driver=None) == "postgresql://tonewatch:tonewatch@127.0.0.1:15432/tonewatch"
    assert redis_url(settings) == "redis://127.0.0.1:16379/0"


def test_env_prefix_and_path_expansion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/dev")
    monkeypatch.setenv("TW_STACK_STATE_DIR", "~/stack")
    monkeypatch.setenv("TW_STACK_KAFKA_PORT", "29092")
    monkeypatch.setenv("TW_STACK_POSTGRES_PASSWORD", "p@ss/word")
    settings = StackSettings()
    assert settings.state_dir == Path("/home/dev/stack")
    assert kafka_bootstrap(settings) == "127.0.0.1:29092"
    assert "p%40ss%2Fword@" in postgres_url(settings)
    assert "p@ss" not in repr(settings)


def test_frozen_and_validated() -> None:
    settings = StackSettings(postgres_password=SecretStr("x"))
    field = "kafka_port"
    with pytest.raises(ValidationError):
        setattr(settings, field, 1)
    with pytest.raises(ValidationError):
        StackSettings(kafka_version="3.9.0")
    with pytest.raises(ValidationError):
        StackSettings(redis_port=70000)


@pytest.mark.parametrize("password", ["s3cret", "p@ss/word", "Pa$$w0rd/2024!", "50%off#1"])
def test_printed_endpoints_never_show_the_password(password: str) -> None:
    from urllib.parse import quote

    from shared.stack.manager import _endpoints

    url = _endpoints(StackSettings(postgres_password=SecretStr(password)))["postgres_url"]
    assert password not in url and quote(password, safe="") not in url, url
    assert url.startswith("postgresql+asyncpg://tonewatch:***@127.0.0.1:")


def test_an_ipv6_host_is_bracketed_in_every_address() -> None:
    settings = StackSettings(host="::1")
    assert kafka_bootstrap(settings) == "[::1]:19092"
    assert postgres_url(settings) == "postgresql+asyncpg://tonewatch:tonewatch@[::1]:15432/tonewatch"
    assert redis_url(settings) == "redis://[::1]:16379/0"
