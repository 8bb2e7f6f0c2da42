"""Dead-letter topics take a whole dead letter: the original record (up to the broker's
1 MiB default) plus its ``tw.*`` headers."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.config import KafkaSettings
from shared.kafka.clients import DLQ_MAX_MESSAGE_BYTES, ensure_with_dlqs
from shared.topics import Topics

pytestmark = pytest.mark.integration


async def _limits(settings: KafkaSettings, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        out = {}
        for response in await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]):
            for _code, _msg, _type, name, entries in response.resources:
                out[name] = int({e[0]: e[1] for e in entries}["max.message.bytes"])
        return out
    finally:
        await admin.close()


async def test_dlq_topics_are_created_large_and_older_ones_are_raised(kafka_settings: KafkaSettings) -> None:
    fresh, older = f"dlqt-{uuid.uuid4().hex[:8]}", f"dlqt-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    await admin.start()
    try:  # a DLQ topic as an earlier version created it: the broker's default limit
        await admin.create_topics([NewTopic(Topics.dlq(older), 3, 1)])
    finally:
        await admin.close()
    assert (await _limits(kafka_settings, [Topics.dlq(older)]))[Topics.dlq(older)] < DLQ_MAX_MESSAGE_BYTES
    await ensure_with_dlqs(kafka_settings, [fresh, older])
    limits = await _limits(kafka_settings, [fresh, older, Topics.dlq(fresh), Topics.dlq(older)])
    assert limits[Topics.dlq(fresh)] == limits[Topics.dlq(older)] == DLQ_MAX_MESSAGE_BYTES
    assert limits[fresh] < DLQ_MAX_MESSAGE_BYTES  # source topics keep the broker's default
