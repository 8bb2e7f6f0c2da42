"""Each event counts exactly once in the buckets, even when the aggregator is
killed (-9) before its database commit, between the database commit and the
Kafka commit, and at random moments, and its input is replayed."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from sqlalchemy import func, select
from tw_testing import env_for, wait_until

from services.aggregator.config import AggregatorSettings
from services.aggregator.persist import store_batch
from shared.db.models import CountedEvent, ScoredEventRow, TrendMinute
from shared.events import Score, ScoredEvent
from shared.kafka.clients import ensure_topics, make_producer

pytestmark = pytest.mark.integration
T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


def scored(i: int, label: str = "neutral", *, stream: Literal["news", "chat"] = "news") -> ScoredEvent:
    probs = {"negative": 0.1, "neutral": 0.1, "positive": 0.1} | {label: 0.8}
    t = T0 + timedelta(seconds=i % 600)
    return ScoredEvent(
        id=f"ev-{i}",
        stream=stream,
        event_time=t,
        received_time=t,
        text=f"headline {i}",
        entities=["ACME", "_all"] if i % 3 == 0 else ["_all"],
        sentiment=Score(label=label, confidence=0.8, probs=probs, model="m", version="v1"),
    )


async def produce_scored(settings: AggregatorSettings, events: list[ScoredEvent]) -> None:
    await ensure_topics(settings.kafka, [settings.topics.text_scored])
    producer = make_producer(settings.kafka, client_id="test")
    await producer.start()
    try:
        futures = [
            await producer.send(settings.topics.text_scored, e.to_bytes(), key=e.entities[0].encode()) for e in events
        ]
        for f in futures:
            await f
    finally:
        await producer.stop()


async def totals(sessions: Any, entity: str = "_all") -> int:
    async with sessions() as s:
        q = select(func.coalesce(func.sum(TrendMinute.count), 0)).where(TrendMinute.entity == entity)
        return int((await s.execute(q)).scalar() or 0)


def start(
    settings: AggregatorSettings, tmp: Path, name: str, failpoints: str = "", max_batch: int = 150
) -> subprocess.Popen[bytes]:
    env = env_for(
        settings,
        TW_FAILPOINTS=failpoints,
        TW_AGGREGATOR_MAX_BATCH=str(max_batch),
        TW_AGGREGATOR_MAX_WAIT_MS="50",
        TW_AGGREGATOR_GROUP_ID=settings.group_id,
    )
    log = (tmp / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services", "run", "aggregator"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    return proc


async def test_kill_9_at_every_stage_counts_each_event_once(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    settings: AggregatorSettings = service_settings(AggregatorSettings, group_id=f"agg-{unique}")
    n = 3_000
    events = [scored(i) for i in range(n)]
    duplicates = [scored(i) for i in random.Random(1).sample(range(n), 200)]  # producer retries
    await produce_scored(settings, events + duplicates)
    before = await totals(sessions)

    for name, failpoints in (("before-commit", "before_db_commit:3"), ("after-commit", "after_db_commit:3")):
        proc = start(settings, tmp_path, name, failpoints)
        assert proc.wait(timeout=120) == -signal.SIGKILL, (tmp_path / f"{name}.log").read_text()[-2000:]

    rng = random.Random(7)
    killed_mid_stream = 0
    for k in range(3):  # kill -9 from outside at random moments, once it is making progress
        # small batches keep it busy long enough for the kill to land mid-stream
        proc = start(settings, tmp_path, f"random-{k}", max_batch=10)
        seen = await totals(sessions)
        await wait_until(lambda seen=seen: _done(sessions, min(seen + 1, before + n)), timeout=60)
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        killed_mid_stream += await totals(sessions) < before + n
    assert killed_mid_stream >= 1, "every random kill landed after the stream was fully counted"

    proc = start(settings, tmp_path, "final")
    try:
        await wait_until(lambda: "consuming" in (tmp_path / "final.log").read_text(), timeout=60)
        await wait_until(lambda: _done(sessions, before + n), timeout=120)
        assert await totals(sessions) - before == n
        async with sessions() as s:
            acme = (await s.execute(select(func.sum(TrendMinute.count)).where(TrendMinute.entity == "ACME"))).scalar()
        assert acme == len([i for i in range(n) if i % 3 == 0])
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


async def _done(sessions: Any, target: int) -> bool:
    return await totals(sessions) >= target


async def test_a_news_and_a_chat_event_with_the_same_id_are_both_counted(sessions: Any, unique: str) -> None:
    """Ids are unique within a stream: a news file and a chat file that both number their
    rows 1..N. Before, the ledger and ``scored_events`` were keyed by id alone and the
    second stream's event was dropped from the trends and the drill-down."""
    entity = f"E{unique}"
    news, chat = (
        scored(10_000, stream=s).model_copy(update={"id": f"n-{unique}", "entities": [entity]})
        for s in ("news", "chat")
    )
    assert await store_batch(sessions, [news]) == 1
    assert await store_batch(sessions, [chat, news]) == 1  # the chat event is new; the news one is not
    assert await store_batch(sessions, [news, chat]) == 0  # and each is still counted once
    twice = [scored(10_001, stream="chat").model_copy(update={"id": f"m-{unique}"})] * 2
    assert await store_batch(sessions, twice) == 1  # a batch with a duplicate
    async with sessions() as s:
        per_stream = select(TrendMinute.stream, func.sum(TrendMinute.count)).where(TrendMinute.entity == entity)
        counts = dict((await s.execute(per_stream.group_by(TrendMinute.stream))).tuples().all())
        ledger = (await s.execute(select(CountedEvent.stream).where(CountedEvent.id == news.id))).scalars().all()
        rows = (await s.execute(select(ScoredEventRow.stream).where(ScoredEventRow.id == news.id))).scalars().all()
    assert counts == {"news": 1, "chat": 1}
    assert sorted(ledger) == sorted(rows) == ["chat", "news"]
