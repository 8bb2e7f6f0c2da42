"""The classifier rebuilt its entity matcher on the event loop at every watchlist refresh,
changed or not (10,000 entities: about 0.7 s of stall every 15 s), and every deployment,
consumer group and replica published its status under one Redis key. On PostgreSQL,
Redis and Kafka: the matcher is rebuilt, in a worker thread, only when an active entity's
row changed; each replica's status is a field of its topic prefix's hash, gone when it stops."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from services_proc import log_tail, running
from sink_outage import produce
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tw_testing import topic_records, wait_until

from services.classifier.app import Watchlist, watchlist_fingerprint
from services.classifier.config import ClassifierSettings, status_field, status_key
from shared.db.models import Entity
from shared.db.watchlist import remove, upsert
from shared.entities import EntityMatcher, WatchedEntity
from shared.inference.registry import Registry
from shared.kafka.clients import ensure_topics

pytestmark = pytest.mark.integration


async def test_the_fingerprint_changes_with_any_active_row_and_only_then(
    sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    key = f"FP{unique}"
    await upsert(sessions, [WatchedEntity(key, "Fingerprint plc", aliases=("Fingerprint",))])
    seen = [await watchlist_fingerprint(sessions)]
    assert await watchlist_fingerprint(sessions) == seen[-1]  # read again, nothing changed
    changes = [
        WatchedEntity(key, "Fingerprint plc", aliases=("Fingerprint", "FP Group")),
        WatchedEntity(key, "Fingerprint plc", aliases=("Fingerprint", "FP Group"), tickers=("FPG",)),
        WatchedEntity(key, "Fingerprint plc", aliases=("Fingerprint",), case_sensitive_aliases=("FPG",)),
        WatchedEntity(key, "Fingerprint plc", aliases=("Fingerprint",), case_sensitive_aliases=("FPG",), group="g"),
    ]
    for entity in changes:
        await upsert(sessions, [entity])
        seen.append(await watchlist_fingerprint(sessions))
    async with sessions.begin() as session:
        await session.execute(update(Entity).where(Entity.key == key).values(active=False))
    seen.append(await watchlist_fingerprint(sessions))
    await upsert(sessions, [changes[-1]])  # active again, as before
    assert await watchlist_fingerprint(sessions) == seen[-2]
    assert len(set(seen)) == len(seen), seen
    assert await remove(sessions, key)
    assert await watchlist_fingerprint(sessions) == seen[-1]  # removed: as inactive, not in the watchlist


async def test_the_matcher_is_rebuilt_off_the_loop_only_when_the_watchlist_changed(
    sessions: async_sessionmaker[AsyncSession], unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    built_in: list[str] = []

    class Spy(EntityMatcher):
        def __init__(self, entities: list[WatchedEntity]) -> None:
            built_in.append(threading.current_thread().name)
            super().__init__(entities)

    watchlist = Watchlist(sessions)
    monkeypatch.setattr("services.classifier.app.EntityMatcher", Spy)
    await upsert(sessions, [WatchedEntity(f"RB{unique}", "Rebuild Holdings", aliases=(f"Rebuild{unique}",))])
    first = await watchlist.refresh()
    for _ in range(3):
        assert await watchlist.refresh() is first
    assert len(built_in) == 1 and built_in[0] != threading.main_thread().name
    assert first.tag(f"Rebuild{unique} wins") == [f"RB{unique}", "_all"]

    await upsert(sessions, [WatchedEntity(f"RB{unique}", "Rebuild Holdings", aliases=(f"Renamed{unique}",))])
    second = await watchlist.refresh()
    assert second is not first and len(built_in) == 2 and built_in[1] != threading.main_thread().name
    assert second.tag(f"Renamed{unique} wins") == [f"RB{unique}", "_all"]
    assert second.tag(f"Rebuild{unique} wins") == ["_all"]
    await remove(sessions, f"RB{unique}")


async def test_the_classifier_rebuilds_on_a_change_only_and_publishes_its_status_per_replica(
    service_settings: Callable[..., Any],
    tiny_models: Path,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    unique: str,
) -> None:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    group, key = f"cls-{unique}", status_key(topics.prefix)
    await upsert(sessions, [WatchedEntity(f"WL{unique}", "Watch Ltd", aliases=(f"Watch{unique}",))])
    redis = Redis.from_url(settings.redis.url.get_secret_value(), decode_responses=True)
    env = {
        "TW_MODELS_DIR": str(tiny_models),
        "TW_CLASSIFIER_GROUP_ID": group,
        "TW_CLASSIFIER_WATCHLIST_REFRESH_S": "0.5",
    }

    def loads() -> int:
        return int(log_tail(tmp_path, "classifier", 10**6).count("watchlist loaded:"))

    try:
        with running("classifier", settings, tmp_path, **env) as proc:
            field = status_field(group, f"{socket.gethostname()}:{proc.pid}")

            async def status() -> dict[str, Any] | None:
                assert proc.poll() is None, log_tail(tmp_path, "classifier")
                raw = await redis.hget(key, field)
                return json.loads(raw) if raw else None

            await wait_until(lambda: loads() >= 1, timeout=90)
            await asyncio.sleep(3)  # six refreshes of an unchanged watchlist
            assert loads() == 1, log_tail(tmp_path, "classifier")

            await upsert(sessions, [WatchedEntity(f"WL{unique}", "Watch Ltd", aliases=(f"Guard{unique}",))])
            await wait_until(lambda: loads() == 2, timeout=30)
            now = datetime.now(UTC).isoformat()
            await produce(
                settings,
                topics.news_raw,
                [json.dumps({"id": "g1", "text": f"Guard{unique} up", "event_time": now}).encode()],
            )

            async def tagged() -> list[str]:
                scored = [json.loads(r.value) for r in await topic_records(settings, topics.text_scored)]
                return [e for s in scored if s["id"] == "g1" for e in s["entities"]]

            assert await wait_until(tagged, timeout=90) == [f"WL{unique}", "_all"]

            published = await wait_until(status, timeout=60)
            registry = Registry(tiny_models)
            served = {m["task"]: m["version"] for m in published["models"]}
            assert served == {t: registry.promoted_version(t) for t in ("sentiment", "intent")}
            assert published["group"] == group and not any(m["pinned"] for m in published["models"])
            assert await redis.ttl(key) > 0
        assert await redis.hget(key, field) is None  # removed as it stopped
    finally:
        await redis.delete(key)
        await redis.aclose()
        await remove(sessions, f"WL{unique}")
