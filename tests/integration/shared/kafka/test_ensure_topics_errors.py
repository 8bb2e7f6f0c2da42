"""``ensure_topics`` reports a topic the broker refuses to create: aiokafka's admin
client returns per-topic error codes instead of raising, and a refusal passed silently
(the caller failed 30 s later on UnknownTopicOrPartitionError)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.config import KafkaSettings
from shared.kafka.clients import TopicCreationError, ensure_topics

pytestmark = pytest.mark.integration


def _name() -> str:
    return f"enst-{uuid.uuid4().hex[:8]}"


async def _existing(settings: KafkaSettings) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_an_invalid_topic_name_is_an_error_naming_the_topic(kafka_settings: KafkaSettings) -> None:
    good, bad = _name(), f"{_name()}/bad"
    with pytest.raises(TopicCreationError) as caught:
        await ensure_topics(kafka_settings, [good, bad])
    text = str(caught.value)
    assert repr(bad) in text and "INVALID_TOPIC" in text and "characters other than ASCII alphanumerics" in text
    assert good not in text
    assert caught.value.errors[0][0] == bad
    assert good in await _existing(kafka_settings)  # the valid one of the batch is still made


async def test_a_replication_factor_above_the_brokers_is_an_error(kafka_settings: KafkaSettings) -> None:
    name = _name()
    with pytest.raises(TopicCreationError, match="INVALID_REPLICATION_FACTOR") as caught:
        await ensure_topics(kafka_settings, [name], replication=3)
    assert repr(name) in str(caught.value)
    assert name not in await _existing(kafka_settings)


async def test_an_invalid_topic_config_is_an_error(kafka_settings: KafkaSettings) -> None:
    name = _name()
    with pytest.raises(TopicCreationError, match="INVALID_CONFIG") as caught:
        await ensure_topics(kafka_settings, [name], configs={"cleanup.policy": "bogus"})
    assert repr(name) in str(caught.value)


async def test_a_topic_created_meanwhile_is_no_error(kafka_settings: KafkaSettings) -> None:
    """Concurrent callers both see the topic missing; the loser gets TOPIC_ALREADY_EXISTS."""
    names = [_name() for _ in range(3)]
    await asyncio.gather(*(ensure_topics(kafka_settings, names) for _ in range(4)))
    await ensure_topics(kafka_settings, names)  # and again, once they are listed
    assert set(names) <= await _existing(kafka_settings)
