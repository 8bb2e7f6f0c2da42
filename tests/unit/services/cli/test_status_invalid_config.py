"""`tonewatch status` with a service's settings invalid (here the aggregator's ledger
retention shorter than its scored-event retention, which its model validator refuses): the
status command stopped there with pydantic's ValidationError (exit 2 through the CLI's entry
point, nothing checked); it now shows the misconfiguration as a failing check, one line, and
goes on with the stack, the other services' lag and throughput (exit 1)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from typer.testing import CliRunner

import services.ops as ops
from services.cli import app
from shared.config import KafkaSettings, PostgresSettings, RedisSettings, ServiceSettings

WHY = (
    "invalid configuration (AggregatorSettings): settings: Value error, TW_AGGREGATOR_LEDGER_RETENTION_DAYS (3) is "
    "shorter than TW_AGGREGATOR_SCORED_RETENTION_DAYS (7)"
)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def check(settings: KafkaSettings | PostgresSettings | RedisSettings) -> None:
        return None

    async def consumer_lag(settings: ServiceSettings, groups: Sequence[ops.ConsumerGroup]) -> dict[str, dict[str, int]]:
        seen["groups"] = [g.service for g in groups]
        return {g.service: {g.topics[0]: 0} for g in groups}

    async def throughput(settings: ServiceSettings, minutes: int = 5) -> dict[str, Any]:
        return {"window_min": minutes, "stored_per_s": 1.0, "routed_per_s": 0.5}

    for name in ("kafka_check", "postgres_check", "redis_check"):
        monkeypatch.setattr(ops, name, check)
    monkeypatch.setattr(ops, "consumer_lag", consumer_lag)
    monkeypatch.setattr(ops, "throughput", throughput)
    monkeypatch.setenv("TW_AGGREGATOR_LEDGER_RETENTION_DAYS", "3")
    monkeypatch.delenv("TW_AGGREGATOR_SCORED_RETENTION_DAYS", raising=False)
    return seen


def test_status_shows_an_invalid_setting_as_a_failing_check_and_goes_on(fakes: dict[str, Any]) -> None:
    result = CliRunner().invoke(app, ["status"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [
        ["kafka", "healthy"],
        ["postgres", "healthy"],
        ["redis", "healthy"],
    ]
    invalid = [line for line in lines if line.startswith("aggregator ")]
    assert len(invalid) == 1 and invalid[0].split(None, 1)[1].startswith(WHY), lines
    assert "Traceback" not in result.output and "ValidationError" not in result.output
    assert fakes["groups"] == ["classifier", "router"]  # the aggregator's group is not known: no lag for it
    assert "classifier lag news.raw=0 (group tonewatch-classifier)" in lines
    assert any(line.startswith("throughput (last 5 min)") for line in lines)


def test_status_json_names_the_invalid_setting(fakes: dict[str, Any]) -> None:
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["stack"] == {"kafka": True, "postgres": True, "redis": True}
    assert set(data["invalid_config"]) == {"aggregator"} and data["invalid_config"]["aggregator"].startswith(WHY)
    assert data["groups"] == {"classifier": "tonewatch-classifier", "router": "tonewatch-router"}
    assert set(data["lag"]) == {"classifier", "router"} and "throughput" in data and "error" not in data
