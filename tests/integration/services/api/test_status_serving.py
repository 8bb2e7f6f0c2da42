"""``GET /v1/status`` listed the promoted model version as if it served, while the
classifier serves what it loaded at start-up until it restarts; and it read one Redis key
that every deployment, consumer group and replica overwrote. On Redis, with statuses
published as the classifier publishes them: promoted and served are told apart, per
deployment (topic prefix), group and replica."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.api.config import ApiSettings
from services.api.deps import Deps
from services.classifier.app import publish_replica_status
from services.classifier.config import STATUS_TTL_S, ClassifierSettings, status_key
from shared.inference.registry import Registry
from shared.labels import TASKS
from shared.topics import Topics

pytestmark = pytest.mark.integration


def _register(root: Path, tmp: Path) -> None:
    registry = Registry(root)
    (tmp / "tokenizer.json").write_text("{}")
    (tmp / "model.int8.onnx").write_bytes(b"\x08\x07onnx-placeholder")
    files = {"tokenizer.json": tmp / "tokenizer.json", "model.int8.onnx": tmp / "model.int8.onnx"}
    for task in TASKS:
        for version in (f"{task}-v6", f"{task}-v7"):
            registry.register(task, version, {"name": f"tonewatch-{task}", "created_at": "2026-11-28"}, files=files)
        registry.promote(task, f"{task}-v7")


def _status(settings: ClassifierSettings, replica: str, sentiment: str, at: float | None = None) -> dict[str, Any]:
    models = [
        {"task": "sentiment", "version": sentiment, "pinned": False},
        {"task": "intent", "version": "intent-v7", "pinned": False},
    ]
    published = time.time() if at is None else at
    return {"group": settings.group_id, "replica": replica, "published_at": published, "models": models}


async def _publish(settings: ClassifierSettings, replica: str, sentiment: str, at: float | None = None) -> None:
    await publish_replica_status(settings, replica, _status(settings, replica, sentiment, at))


async def test_status_tells_the_promoted_version_from_the_served_one_per_prefix_group_and_replica(
    client: httpx.AsyncClient, api_settings: ApiSettings, deps: Deps, tmp_path: Path
) -> None:
    assert api_settings.models_dir is not None
    _register(api_settings.models_dir, tmp_path)
    here = ClassifierSettings(redis=api_settings.redis, topics=api_settings.topics)
    shadow = here.model_copy(update={"group_id": "shadow-classifier"})
    elsewhere = here.model_copy(update={"topics": Topics(prefix=f"other-{api_settings.topics.prefix}")})
    keys = [status_key(s.topics.prefix) for s in (here, elsewhere)]

    async def status() -> dict[str, Any]:
        answer = (await client.get("/v1/status")).json()
        return {"models": {m["task"]: m for m in answer["models"]}, "classifier": answer["classifier"]}

    try:
        got = await status()
        assert got["classifier"] is None
        assert got["models"]["sentiment"]["serving"] == [] and got["models"]["sentiment"]["serving_differs"] is None

        await _publish(here, "host-a:1", "sentiment-v6")  # started before the promotion
        await _publish(here, "host-b:1", "sentiment-v7")  # restarted since
        await _publish(shadow, "host-c:1", "sentiment-v7")  # another group: its own field
        await _publish(elsewhere, "host-d:1", "sentiment-v5")  # another deployment: not this API's
        got = await status()
        sentiment, intent = got["models"]["sentiment"], got["models"]["intent"]
        assert sentiment["version"] == "sentiment-v7" and sentiment["serving"] == ["sentiment-v6", "sentiment-v7"]
        assert sentiment["serving_differs"] is True and "after a restart" in sentiment["serving_note"]
        assert intent["serving"] == ["intent-v7"] and intent["serving_differs"] is False
        replicas = [(r["group"], r["replica"]) for r in got["classifier"]["replicas"]]
        assert replicas == [
            ("shadow-classifier", "host-c:1"),
            ("tonewatch-classifier", "host-a:1"),
            ("tonewatch-classifier", "host-b:1"),
        ]
        assert got["classifier"]["group"] == "tonewatch-classifier"

        await publish_replica_status(here, "host-a:1", None)  # host-a stopped
        await _publish(here, "host-e:1", "sentiment-v7", at=time.time() - STATUS_TTL_S - 5)  # killed long ago
        got = await status()
        assert got["models"]["sentiment"]["serving"] == ["sentiment-v7"]
        assert got["models"]["sentiment"]["serving_differs"] is False
        assert "host-e:1" not in {r["replica"] for r in got["classifier"]["replicas"]}
        await _publish(here, "host-b:1", "sentiment-v7")  # the next publish drops the dead replica's field
        assert await deps.redis.hlen(keys[0]) == 2
        assert 0 < await deps.redis.ttl(keys[0]) <= STATUS_TTL_S
    finally:
        await deps.redis.delete(*keys)
