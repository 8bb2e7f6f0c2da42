"""``tonewatch status`` reports lag for the consumer groups the services are configured
with (``TW_<SERVICE>_GROUP_ID``), against the real Kafka, with unique topics and groups."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete

from shared.config import KafkaSettings, PostgresSettings, RedisSettings
from shared.topics import Topics

pytestmark = pytest.mark.integration


@pytest.fixture
async def created(kafka_settings: KafkaSettings, topics: Topics) -> AsyncIterator[Topics]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    await admin.start()
    names = [topics.news_raw, topics.text_scored]
    try:
        await admin.create_topics([NewTopic(topics.news_raw, 2, 1), NewTopic(topics.text_scored, 1, 1)])
        yield topics
    finally:
        await admin.delete_topics(names)
        await admin.close()


async def _produce(bootstrap: str, counts: dict[TopicPartition, int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for tp, n in counts.items():
            for i in range(n):
                await producer.send_and_wait(tp.topic, f"m{i}".encode(), partition=tp.partition)
    finally:
        await producer.stop()


async def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def _delete_before(bootstrap: str, tp: TopicPartition, offset: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(offset)})
    finally:
        await admin.close()


async def test_lag_is_that_of_the_configured_groups(
    created: Topics,
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    redis_settings: RedisSettings,
    unique: str,
) -> None:
    bootstrap = kafka_settings.bootstrap_servers
    news0, news1 = TopicPartition(created.news_raw, 0), TopicPartition(created.news_raw, 1)
    scored = TopicPartition(created.text_scored, 0)
    await _produce(bootstrap, {news0: 3, news1: 3, scored: 6})
    await _delete_before(bootstrap, news1, 1)  # retention: partition 1 now starts at offset 1
    groups = {"classifier": f"cls-{unique}", "aggregator": f"agg-{unique}", "router": f"rtr-{unique}"}
    # Partition 1 never committed: the group would start at its first record, so all of it lags.
    await _commit(bootstrap, groups["classifier"], {news0: 1})
    await _commit(bootstrap, groups["aggregator"], {scored: 6})
    await _commit(bootstrap, groups["router"], {scored: 2})

    env = {
        "PATH": "/usr/bin:/bin",
        "TW_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "TW_POSTGRES__URL": pg_settings.url.get_secret_value(),
        "TW_REDIS__URL": redis_settings.url.get_secret_value(),
        "TW_TOPICS__PREFIX": created.prefix,
        "TW_CLASSIFIER_GROUP_ID": groups["classifier"],
        "TW_AGGREGATOR_GROUP_ID": groups["aggregator"],
        "TW_ROUTER_GROUP_ID": groups["router"],
    }
    proc = subprocess.run(
        [sys.executable, "-m", "services", "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert data["lag"] == {
        "classifier": {created.news_raw: (3 - 1) + (3 - 1)},  # chat.raw does not exist under this prefix
        "aggregator": {created.text_scored: 0},
        "router": {created.text_scored: 4},
    }
    assert data["groups"] == groups
    assert "tonewatch:tonewatch@" not in proc.stdout + proc.stderr  # no password
