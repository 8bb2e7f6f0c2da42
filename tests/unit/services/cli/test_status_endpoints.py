"""`tonewatch status` checks the Kafka, PostgreSQL and Redis the services are configured
for (TW_KAFKA__BOOTSTRAP_SERVERS, TW_POSTGRES__URL, TW_REDIS__URL), not the local stack's
ports, and never prints their passwords. Checks, lag and throughput are fakes here."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

import services.ops as ops
from services.cli import app
from shared.config import KafkaSettings, PostgresSettings, RedisSettings, ServiceSettings

KAFKA = "kafka-1.prod.example:9093,kafka-2.prod.example:9093"
POSTGRES = "postgresql+asyncpg://tw:Pg-S3cret@db.prod.example:5432/tonewatch"
REDIS = "redis://:R3dis-S3cret@cache.prod.example:6380/2"
SECRETS = ("Pg-S3cret", "R3dis-S3cret")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Point every endpoint elsewhere; record what each check and query was asked to reach."""
    monkeypatch.setenv("TW_KAFKA__BOOTSTRAP_SERVERS", KAFKA)
    monkeypatch.setenv("TW_POSTGRES__URL", POSTGRES)
    monkeypatch.setenv("TW_REDIS__URL", REDIS)
    seen: dict[str, Any] = {"down": set()}

    async def kafka_check(settings: KafkaSettings) -> None:
        seen["kafka"] = settings.bootstrap_servers
        if "kafka" in seen["down"]:
            raise OSError(f"cannot reach {settings.bootstrap_servers}")

    async def postgres_check(settings: PostgresSettings) -> None:
        seen["postgres"] = settings.url.get_secret_value()
        if "postgres" in seen["down"]:
            raise OSError(f"cannot connect to {settings.url.get_secret_value()}")

    async def redis_check(settings: RedisSettings) -> None:
        seen["redis"] = settings.url.get_secret_value()
        if "redis" in seen["down"]:
            raise OSError(f"cannot connect to {settings.url.get_secret_value()}")

    async def consumer_lag(settings: ServiceSettings, *groups: object) -> dict[str, dict[str, int]]:
        seen["lag_from"] = settings.kafka.bootstrap_servers
        seen["groups"] = groups
        return {"classifier": {"news.raw": 7}}

    async def throughput(settings: ServiceSettings, minutes: int = 5) -> dict[str, Any]:
        seen["throughput_from"] = settings.postgres.url.get_secret_value()
        return {"window_min": minutes, "stored_per_s": 1.0, "routed_per_s": 0.5}

    # raising=False: on code without these hooks the test fails on its assertions.
    monkeypatch.setattr(ops, "kafka_check", kafka_check, raising=False)
    monkeypatch.setattr(ops, "postgres_check", postgres_check, raising=False)
    monkeypatch.setattr(ops, "redis_check", redis_check, raising=False)
    monkeypatch.setattr(ops, "consumer_lag", consumer_lag)
    monkeypatch.setattr(ops, "throughput", throughput)
    return seen


def _assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, text


def test_checks_the_endpoints_the_services_use(fakes: dict[str, Any]) -> None:
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    assert (fakes.get("kafka"), fakes.get("postgres"), fakes.get("redis")) == (KAFKA, POSTGRES, REDIS)
    data = json.loads(result.stdout)
    assert data["stack"] == {"kafka": True, "postgres": True, "redis": True}
    assert data["endpoints"] == {
        "kafka": KAFKA,
        "postgres": "postgresql+asyncpg://tw:***@db.prod.example:5432/tonewatch",
        "redis": "redis://:***@cache.prod.example:6380/2",
    }
    assert data["lag"] == {"classifier": {"news.raw": 7}}
    assert data["throughput"]["stored_per_s"] == 1.0
    assert fakes["lag_from"] == KAFKA
    assert fakes["throughput_from"] == POSTGRES
    _assert_no_secrets(result.output)


def test_text_output_names_the_endpoints_without_passwords(fakes: dict[str, Any]) -> None:
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["kafka", "healthy", KAFKA]
    assert lines[1].split() == ["postgres", "healthy", "postgresql+asyncpg://tw:***@db.prod.example:5432/tonewatch"]
    assert lines[2].split() == ["redis", "healthy", "redis://:***@cache.prod.example:6380/2"]
    assert "classifier lag news.raw=7 (group tonewatch-classifier)" in lines
    _assert_no_secrets(result.output)


def test_a_down_endpoint_exits_1_and_still_reports_lag(fakes: dict[str, Any]) -> None:
    fakes["down"] = {"redis", "postgres"}
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["stack"] == {"kafka": True, "postgres": False, "redis": False}
    assert set(data["down"]) == {"postgres", "redis"}
    assert "cache.prod.example:6380" in data["down"]["redis"]
    assert data["lag"] == {"classifier": {"news.raw": 7}}  # Kafka answers: lag is shown
    assert "throughput" not in data  # PostgreSQL does not
    _assert_no_secrets(result.output)


def test_query_password_is_not_printed(fakes: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_POSTGRES__URL", "postgresql+asyncpg://tw@db.prod.example/tonewatch?password=Pg-S3cret")
    fakes["down"] = {"postgres"}
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 1
    assert "postgres   DOWN     postgresql+asyncpg://tw@db.prod.example/tonewatch" in result.stdout
    _assert_no_secrets(result.output)


def test_lag_is_read_for_the_groups_the_services_are_configured_with(
    fakes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_CLASSIFIER_GROUP_ID", "cls-blue")
    monkeypatch.setenv("TW_ROUTER_GROUP_ID", "rtr-blue")
    monkeypatch.setenv("TW_TOPICS__PREFIX", "blue.")
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    asked = {(g.service, g.group_id, g.topics) for g in fakes["groups"][0]} if fakes["groups"] else set()
    assert asked == {
        ("classifier", "cls-blue", ("blue.news.raw", "blue.chat.raw")),
        ("aggregator", "tonewatch-aggregator", ("blue.text.scored",)),
        ("router", "rtr-blue", ("blue.text.scored",)),
    }
    assert json.loads(result.stdout)["groups"] == {
        "classifier": "cls-blue",
        "aggregator": "tonewatch-aggregator",
        "router": "rtr-blue",
    }
