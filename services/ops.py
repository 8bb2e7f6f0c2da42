"""Operational views: dependency health, consumer lag and throughput per service
(``tonewatch status``).

Everything here takes settings built at the entrypoint: the endpoints checked are the
ones the services use (``TW_KAFKA__BOOTSTRAP_SERVERS``, ``TW_POSTGRES__URL``,
``TW_REDIS__URL``) and the consumer groups are the services' own (``TW_<SERVICE>_GROUP_ID``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import func, select

from shared.config import ServiceSettings
from shared.db.models import RoutingMinute, ScoredEventRow
from shared.db.session import make_engine, make_sessionmaker
from shared.logs import mask_url_passwords, scrub
from shared.startup import Dependency, kafka_check, postgres_check, redis_check

if TYPE_CHECKING:
    from services.aggregator.config import AggregatorSettings
    from services.classifier.config import ClassifierSettings
    from services.router.config import RouterSettings

HEALTH_TIMEOUT_S = 10.0


def display_url(url: str) -> str:
    """``url`` safe to print: password masked, query (``?password=...``) and fragment dropped."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_url_passwords(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    return mask_url_passwords(parts._replace(netloc=netloc, query="", fragment="").geturl())


def dependencies(settings: ServiceSettings) -> dict[str, Dependency]:
    """The Kafka, PostgreSQL and Redis the services are configured for, keyed
    ``kafka``, ``postgres``, ``redis``; targets are printable (no passwords)."""
    return {
        "kafka": Dependency(
            "Kafka", mask_url_passwords(settings.kafka.bootstrap_servers), lambda: kafka_check(settings.kafka)
        ),
        "postgres": Dependency(
            "PostgreSQL",
            display_url(settings.postgres.url.get_secret_value()),
            lambda: postgres_check(settings.postgres),
        ),
        "redis": Dependency(
            "Redis", display_url(settings.redis.url.get_secret_value()), lambda: redis_check(settings.redis)
        ),
    }


async def health(deps: Mapping[str, Dependency], timeout_s: float = HEALTH_TIMEOUT_S) -> dict[str, str | None]:
    """Check every dependency at once: ``None`` when it answered, else why not (scrubbed)."""

    async def one(dep: Dependency) -> str | None:
        try:
            await asyncio.wait_for(dep.check(), timeout_s)
        except TimeoutError:
            return f"no answer within {timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure means DOWN, with its reason
            name, text = type(exc).__name__, str(exc)
            return scrub(text if text.startswith(name) else f"{name}: {text}" if text else name)
        return None

    results = await asyncio.gather(*(one(d) for d in deps.values()))
    return dict(zip(deps, results, strict=True))


@dataclass(frozen=True)
class ConsumerGroup:
    """A service's consumer group and the topics it reads."""

    service: str
    group_id: str
    topics: tuple[str, ...]


def consumer_groups(
    classifier: ClassifierSettings, aggregator: AggregatorSettings, router: RouterSettings
) -> list[ConsumerGroup]:
    """The groups of the services that consume Kafka (the alerter and the API do not),
    as each service's settings name them."""
    return [
        ConsumerGroup("classifier", classifier.group_id, (classifier.topics.news_raw, classifier.topics.chat_raw)),
        ConsumerGroup("aggregator", aggregator.group_id, (aggregator.topics.text_scored,)),
        ConsumerGroup("router", router.group_id, (router.topics.text_scored,)),
    ]


async def consumer_lag(settings: ServiceSettings, groups: Sequence[ConsumerGroup]) -> dict[str, dict[str, int]]:
    """Committed offsets vs log end, per service group and topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    await consumer.start()
    out: dict[str, dict[str, int]] = {}
    try:
        # Every topic's partitions, from one metadata request for all topics: naming
        # topics would let a broker with auto.create.topics.enable create missing ones,
        # and an unsubscribed consumer knows no partitions (a partition its group never
        # committed was left out of the lag).
        partitions = {
            t["topic"]: [p["partition"] for p in t["partitions"]]
            for t in await admin.describe_topics()
            if t["error_code"] == 0
        }
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group.group_id)
            topics = set(group.topics)
            tps = [tp for tp in committed if tp.topic in topics]
            for topic in group.topics:
                for p in partitions.get(topic, ()):
                    tp = TopicPartition(topic, p)
                    if tp not in committed:
                        tps.append(tp)
            ends = await consumer.end_offsets(tps) if tps else {}
            # Never committed: the group starts at the log's start (auto_offset_reset=earliest).
            fresh = [tp for tp in tps if tp not in committed or committed[tp].offset < 0]
            starts = await consumer.beginning_offsets(fresh) if fresh else {}
            lag: dict[str, int] = {}
            for tp in tps:
                done = starts.get(tp, 0) if tp in starts else committed[tp].offset
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, ends.get(tp, 0) - done)
            out[group.service] = lag
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
