"""Operational views: consumer lag and throughput per service (``tonewatch status``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import func, select

from shared.config import ServiceSettings
from shared.db.models import RoutingMinute, ScoredEventRow
from shared.db.session import make_engine, make_sessionmaker

GROUPS = {
    "classifier": ("tonewatch-classifier", ("news_raw", "chat_raw")),
    "aggregator": ("tonewatch-aggregator", ("text_scored",)),
    "router": ("tonewatch-router", ("text_scored",)),
}


async def consumer_lag(settings: ServiceSettings) -> dict[str, dict[str, int]]:
    """Committed offsets vs log end, per service group and topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    await consumer.start()
    out: dict[str, dict[str, int]] = {}
    try:
        for service, (group, attrs) in GROUPS.items():
            committed = await admin.list_consumer_group_offsets(group)
            topics = {getattr(settings.topics, a) for a in attrs}
            tps = [tp for tp in committed if tp.topic in topics]
            for topic in topics:
                for p in consumer.partitions_for_topic(topic) or set():
                    tp = TopicPartition(topic, p)
                    if tp not in committed:
                        tps.append(tp)
            ends = await consumer.end_offsets(tps) if tps else {}
            lag: dict[str, int] = {}
            for tp in tps:
                done = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, ends.get(tp, 0) - done)
            out[service] = lag
    finally:
        await consumer.stop()
        await admin.close()
    return out


async def throughput(settings: ServiceSettings, minutes: int = 5) -> dict[str, Any]:
    """Events stored and chats routed over the last ``minutes`` (by arrival time)."""
    engine = make_engine(settings.postgres)
    since = datetime.now(UTC) - timedelta(minutes=minutes)
    try:
        async with make_sessionmaker(engine)() as s:
            stored = (
                await s.execute(
                    select(func.count()).select_from(ScoredEventRow).where(ScoredEventRow.created_at >= since)
                )
            ).scalar() or 0
            routed = (
                await s.execute(
                    select(func.coalesce(func.sum(RoutingMinute.count), 0)).where(RoutingMinute.bucket >= since)
                )
            ).scalar() or 0
    finally:
        await engine.dispose()
    return {
        "window_min": minutes,
        "stored_per_s": round(stored / (minutes * 60), 2),
        "routed_per_s": round(int(routed) / (minutes * 60), 2),
    }
