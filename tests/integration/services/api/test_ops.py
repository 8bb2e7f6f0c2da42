"""Operations endpoints: OpenAPI validity, Prometheus metrics, liveness, readiness, status."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from integration.services.api.helpers import assert_error, bearer
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from services.api.config import ApiSettings
from services.api.deps import Deps
from services.classifier.app import publish_replica_status
from services.classifier.config import ClassifierSettings, status_key
from shared.inference.registry import Registry
from shared.labels import TASKS
from shared.stack import manager
from shared.stack.settings import StackSettings

pytestmark = pytest.mark.integration
SHARED_METRICS = {
    "tonewatch_events_in",
    "tonewatch_events_out",
    "tonewatch_dead_letters",
    "tonewatch_batch_size",
    "tonewatch_inference_latency_seconds",
    "tonewatch_inference_provider_info",
    "tonewatch_consumer_lag",
    "tonewatch_db_flush_seconds",
    "tonewatch_alerts_fired",
    "tonewatch_webhook_failures",
}


def register_models(root: Path, tmp: Path) -> None:
    registry = Registry(root)
    (tmp / "tokenizer.json").write_text("{}")
    (tmp / "model.int8.onnx").write_bytes(b"\x08\x07onnx-placeholder")
    for task in TASKS:
        registry.register(
            task,
            f"{task}-v7",
            {
                "name": f"tonewatch-{task}",
                "created_at": "2026-11-28T10:00:00Z",
                "metrics": {"int8": {"accuracy": 0.9, "macro_f1": 0.8}},
            },
            files={"tokenizer.json": tmp / "tokenizer.json", "model.int8.onnx": tmp / "model.int8.onnx"},
        )
        registry.promote(task, f"{task}-v7")


async def test_openapi_document_validates(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    validate(doc)
    for path in (
        "/v1/trends",
        "/v1/entities",
        "/v1/alerts",
        "/v1/alerts/stream",
        "/v1/rules",
        "/v1/rules/{rule_id}",
        "/v1/routing",
        "/v1/events",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/status",
    ):
        assert path in doc["paths"], path
    for path, method, status in (
        ("/v1/rules/{rule_id}", "get", "404"),
        ("/v1/rules/{rule_id}", "patch", "404"),
        ("/v1/rules/{rule_id}", "patch", "409"),
        ("/v1/rules/{rule_id}", "delete", "404"),
        ("/v1/rules", "post", "409"),
        ("/v1/entities/{key}", "delete", "404"),
        ("/v1/alerts/{alert_id}/ack", "post", "409"),
        ("/v1/rules", "get", "503"),  # PostgreSQL unreachable
        ("/v1/trends", "get", "503"),
        ("/v1/events", "post", "503"),  # Kafka unreachable
    ):
        schema = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorDocument"}, (path, method, status)
    assert (await client.get("/docs")).status_code == 200


async def test_metrics_parse_and_name_the_pipeline(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert SHARED_METRICS <= set(families), SHARED_METRICS - set(families)
    samples = [s for s in families["tonewatch_api_requests"].samples if s.labels.get("route") == "/healthz"]
    assert samples and samples[0].value >= 1


async def test_healthz_and_readyz_without_models(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    err = assert_error(await client.get("/readyz"), 503, "not_ready")
    checks = {c["name"]: c for c in err["details"]}
    assert checks["kafka"]["ok"] and checks["postgres"]["ok"] and checks["redis"]["ok"], checks
    assert not checks["model:sentiment"]["ok"] and "promoted" in checks["model:sentiment"]["detail"]
    assert "tonewatch:tonewatch@" not in json.dumps(err)  # no password in the answer


async def test_readyz_and_status_with_promoted_models(
    client: httpx.AsyncClient, api_settings: ApiSettings, deps: Deps, tmp_path: Path
) -> None:
    register_models(api_settings.models_dir, tmp_path)
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready" and all(c["ok"] for c in r.json()["checks"])
    key = status_key(api_settings.topics.prefix)
    await deps.redis.delete(key)
    status = (await client.get("/v1/status")).json()
    models = {m["task"]: m for m in status["models"]}
    assert models["sentiment"]["version"] == "sentiment-v7" and models["intent"]["variants"] == ["int8"]
    assert models["sentiment"]["metrics"]["int8"]["accuracy"] == 0.9
    assert status["classifier"] is None
    live = {"provider": "CUDAExecutionProvider", "variant": "fp16", "device": "NVIDIA H200"}
    cls = ClassifierSettings(redis=api_settings.redis, topics=api_settings.topics)
    replica = {"group": cls.group_id, "replica": "gpu-1:7", "published_at": time.time(), "models": []}
    await publish_replica_status(cls, "gpu-1:7", {**replica, **live})
    try:
        classifier = (await client.get("/v1/status")).json()["classifier"]
        assert {k: classifier[k] for k in live} == live
    finally:
        await deps.redis.delete(key)


async def test_unknown_route_and_method_use_the_error_format(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/nothing"), 404, "not_found")
    assert_error(await client.delete("/v1/trends"), 405, "method_not_allowed")


async def test_postgres_down_answers_503_not_500_and_recovers(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    headers = bearer(keys["admin"])
    assert (await client.get("/v1/rules", headers=headers)).status_code == 200
    stack = StackSettings()
    await asyncio.to_thread(manager.down, stack, only=["postgres"])
    try:
        answers = {
            path: await client.get(path, headers=headers) for path in ("/v1/rules", "/v1/entities", "/v1/alerts")
        }
        posted = await client.post(
            "/v1/events", json={"events": [{"stream": "news", "text": "ACME slumps"}]}, headers=headers
        )
        health = await client.get("/healthz")
    finally:
        up = await asyncio.to_thread(manager.up, stack, only=["postgres"])
    assert up.ok, up
    for response in [*answers.values(), posted]:
        err = assert_error(response, 503, "dependency_unavailable")
        assert response.headers["Retry-After"] == "5"
        assert "15432" not in err["message"] and "127.0.0.1" not in err["message"]
    assert health.status_code == 200  # liveness does not depend on PostgreSQL
    # Connections that died with the server are replaced: no restart of the API needed.
    assert (await client.get("/v1/rules", headers=headers)).status_code == 200
