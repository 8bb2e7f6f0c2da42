"""The demo points its services at the local stack as configured (TW_STACK_* ports and
password), not at the default ports."""

from __future__ import annotations

import pytest

from services.cli.ops import stack_endpoints
from shared.config import ServiceSettings
from shared.stack.settings import StackSettings


def test_services_reach_a_stack_on_other_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = StackSettings(postgres_port=25432, kafka_port=29092, redis_port=26379, postgres_password="p/w#1")
    for name, value in stack_endpoints(stack).items():
        monkeypatch.setenv(name, value)
    settings = ServiceSettings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:29092"
    assert (
        settings.postgres.url.get_secret_value() == "postgresql+asyncpg://tonewatch:p%2Fw%231@127.0.0.1:25432/tonewatch"
    )
    assert settings.redis.url.get_secret_value() == "redis://127.0.0.1:26379/0"
