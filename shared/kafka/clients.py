"""Producer and consumer factories with safe defaults.

Producers: ``acks="all"`` and idempotence (aiokafka defaults are weaker).
Consumers: no auto-commit; callers commit after their effect is durable.
Nothing connects until ``start()`` is awaited.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.config import KafkaSettings


def make_producer(settings: KafkaSettings, *, client_id: str, linger_ms: int = 5) -> AIOKafkaProducer:
    """An idempotent, ``acks=all`` producer."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id_prefix}-{client_id}",
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        request_timeout_ms=settings.request_timeout_ms,
    )


def make_consumer(
    settings: KafkaSettings,
    *topics: str,
    group_id: str,
    client_id: str,
    max_poll_records: int = 500,
    auto_offset_reset: str = "earliest",
) -> AIOKafkaConsumer:
    """A consumer in ``group_id`` with manual commits and read-committed isolation."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id_prefix}-{client_id}",
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset=auto_offset_reset,
        max_poll_records=max_poll_records,
        isolation_level="read_committed",
        request_timeout_ms=settings.request_timeout_ms,
    )


async def ensure_topics(
    settings: KafkaSettings, topics: list[str], *, partitions: int = 3, replication: int = 1
) -> None:
    """Create topics that do not exist yet (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(name=t, num_partitions=partitions, replication_factor=replication) for t in missing]
                )
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
