"""``GET /v1/status`` listed the promoted model version as if it served, while the
classifier serves what it loaded at start-up until it restarts; and it read one Redis key
that every deployment, consumer group and replica overwrote. On Redis, with statuses
published as the classifier publishes them: promoted and served are told apart, per
deployment (topic prefix), group and replica."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from services.api import routes_ops
from services.api.config import ApiSettings
from services.api.deps import Deps
from services.classifier.app import publish_replica_status
from services.classifier.config import STATUS_TTL_S, ClassifierSettings, status_field, status_key
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


async def _redis_now(deps: Deps) -> float:
    seconds, micros = await deps.redis.time()
    return float(seconds) + micros / 1_000_000


async def _write_stamped(deps: Deps, settings: ClassifierSettings, replica: str, sentiment: str, at: float) -> None:
    """A field as a replica stamped it ``at`` (Redis's time) and then was killed."""
    status = _status(settings, replica, sentiment, at)
    await deps.redis.hset(
        status_key(settings.topics.prefix), status_field(settings.group_id, replica), json.dumps(status)
    )


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
        killed_at = await _redis_now(deps) - STATUS_TTL_S - 5
        await _write_stamped(deps, here, "host-e:1", "sentiment-v7", killed_at)  # killed long ago
        got = await status()
        assert got["models"]["sentiment"]["serving"] == ["sentiment-v7"]
        assert got["models"]["sentiment"]["serving_differs"] is False
        assert "host-e:1" not in {r["replica"] for r in got["classifier"]["replicas"]}
        await _publish(here, "host-b:1", "sentiment-v7")  # the next publish drops the dead replica's field
        assert await deps.redis.hlen(keys[0]) == 2
        assert 0 < await deps.redis.ttl(keys[0]) <= STATUS_TTL_S
    finally:
        await deps.redis.delete(*keys)


async def test_the_api_reads_freshness_by_redis_time_whatever_its_hosts_clock(
    client: httpx.AsyncClient, api_settings: ApiSettings, deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API host whose clock was over 60 s ahead showed ``classifier: null`` (every status
    looked dead); one behind listed a killed replica that much longer."""
    here = ClassifierSettings(redis=api_settings.redis, topics=api_settings.topics)
    key = status_key(here.topics.prefix)
    real_time = time.time

    async def replicas_seen_with_api_clock(offset_s: float) -> list[str] | None:
        api_host = SimpleNamespace(time=lambda: real_time() + offset_s, perf_counter=time.perf_counter)
        monkeypatch.setattr(routes_ops, "time", api_host)
        classifier = (await client.get("/v1/status")).json()["classifier"]
        return None if classifier is None else [r["replica"] for r in classifier["replicas"]]

    try:
        await _publish(here, "host-a:1", "sentiment-v7")
        for offset_s in (-120, 0, 120, 3600):
            assert await replicas_seen_with_api_clock(offset_s) == ["host-a:1"], offset_s
        await _write_stamped(deps, here, "killed-ahead:1", "sentiment-v6", await _redis_now(deps) + 3600)
        assert await replicas_seen_with_api_clock(0) == ["host-a:1"]  # a stamp an hour ahead of Redis: stale
    finally:
        await deps.redis.delete(key)


async def test_a_pinned_shadow_group_is_listed_but_the_main_group_alone_is_serving(
    make_client: Callable[[ApiSettings], httpx.AsyncClient], api_settings: ApiSettings, deps: Deps, tmp_path: Path
) -> None:
    """A shadow group pinned to another version made ``serving_differs`` true for good, with
    a note that a restart would fix it; with a custom main group, the device chip showed the
    alphabetically first group, the shadow."""
    assert api_settings.models_dir is not None
    _register(api_settings.models_dir, tmp_path)
    main = ClassifierSettings(redis=api_settings.redis, topics=api_settings.topics, group_id="prod-classifier")
    shadow = main.model_copy(update={"group_id": "a-shadow", "sentiment_version": "sentiment-v6"})
    pinned = _status(shadow, "host-s:1", "sentiment-v6")
    pinned["models"][0]["pinned"] = True
    try:
        await publish_replica_status(shadow, "host-s:1", pinned)
        await _publish(main, "host-m:1", "sentiment-v7")
        # the API's TW_CLASSIFIER_GROUP_ID names the main group
        async with make_client(api_settings.model_copy(update={"classifier_group_id": "prod-classifier"})) as client:
            answer = (await client.get("/v1/status")).json()
        sentiment = next(m for m in answer["models"] if m["task"] == "sentiment")
        assert sentiment["serving"] == ["sentiment-v7"] and sentiment["serving_differs"] is False
        assert "serving_note" not in sentiment
        classifier = answer["classifier"]
        assert (classifier["group"], classifier["replica"]) == ("prod-classifier", "host-m:1")
        assert [r["replica"] for r in classifier["replicas"]] == ["host-s:1", "host-m:1"]
    finally:
        await deps.redis.delete(status_key(main.topics.prefix))
