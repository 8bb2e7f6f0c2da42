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
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from redis.asyncio import Redis
from services_proc import log_tail, running
from sink_outage import produce
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tw_testing import topic_records, wait_until

from services.classifier import app as classifier_app
from services.classifier.app import Watchlist, publish_replica_status, status_of, watchlist_fingerprint
from services.classifier.classify import Classify
from services.classifier.config import STATUS_TTL_S, ClassifierSettings, status_field, status_key
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


@pytest.fixture
async def status_redis(service_settings: Callable[..., Any]) -> AsyncIterator[tuple[ClassifierSettings, Redis]]:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    redis = Redis.from_url(settings.redis.url.get_secret_value(), decode_responses=True)
    try:
        yield settings, redis
    finally:
        await redis.delete(status_key(settings.topics.prefix))
        await redis.aclose()


async def _redis_now(redis: Redis) -> float:
    seconds, micros = await redis.time()
    return float(seconds) + micros / 1_000_000


async def test_statuses_are_stamped_and_pruned_by_redis_time_whatever_each_hosts_clock(
    status_redis: tuple[ClassifierSettings, Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    """By each host's clock, a live replica whose clock was 61 s behind was dropped by its
    peers at every publish, and a killed one whose clock was an hour ahead stayed fresh (its
    peers kept refreshing the hash's expiry) for that hour."""
    settings, redis = status_redis
    key = status_key(settings.topics.prefix)
    idle = cast(Classify, SimpleNamespace(sentiment=None, intent=None))
    real_time = time.time

    async def publish_with_host_clock(replica: str, offset_s: float) -> None:
        host = SimpleNamespace(time=lambda: real_time() + offset_s)
        monkeypatch.setattr(classifier_app, "time", host, raising=False)  # this host's clock, where it reads one
        await publish_replica_status(settings, replica, status_of(idle, settings, replica))

    await publish_with_host_clock("behind:1", -61)
    await publish_with_host_clock("ahead:1", 3600)
    await publish_with_host_clock("on-time:1", 0)  # a peer: its publish prunes the stale fields
    now = await _redis_now(redis)
    stamps = {json.loads(v)["replica"]: json.loads(v)["published_at"] for v in (await redis.hgetall(key)).values()}
    assert set(stamps) == {"behind:1", "ahead:1", "on-time:1"}
    assert all(now - 5 <= at <= now for at in stamps.values()), (now, stamps)

    # an hour ahead of Redis's clock (stamped by an older classifier with its host's clock): stale
    killed = status_field(settings.group_id, "killed-ahead:1")
    status = {"group": settings.group_id, "replica": "killed-ahead:1", "published_at": now + 3600, "models": []}
    await redis.hset(key, killed, json.dumps(status))
    await publish_with_host_clock("on-time:1", 0)
    assert not await redis.hexists(key, killed)
    assert await redis.hlen(key) == 3 and 0 < await redis.ttl(key) <= STATUS_TTL_S


async def test_a_status_publish_after_the_replica_stopped_does_not_put_its_field_back(
    status_redis: tuple[ClassifierSettings, Redis],
) -> None:
    """The 15 s status timer could fire after the shutdown removed the replica's field and
    put it back: listed as serving for another minute after it stopped."""
    from services.classifier.app import ReplicaStatus

    settings, redis = status_redis
    key, field = status_key(settings.topics.prefix), status_field(settings.group_id, "stopping:1")

    def status() -> dict[str, Any]:
        return {"group": settings.group_id, "replica": "stopping:1", "models": []}

    replica = ReplicaStatus(settings, "stopping:1")
    assert await replica.publish(status)
    assert await redis.hexists(key, field)
    under_way = asyncio.create_task(replica.publish(status))  # the timer fired just as the replica stops
    await asyncio.sleep(0)  # it holds the publish lock and is writing
    await replica.remove()
    assert await under_way
    assert not await redis.hexists(key, field)
    assert not await replica.publish(status)  # the timer again, after the removal: nothing
    assert not await redis.hexists(key, field)
