"""Producer and consumer factories with safe defaults.

Producers: ``acks="all"`` and idempotence (aiokafka defaults are weaker).
Consumers: no auto-commit; callers commit after their effect is durable.
Nothing connects until ``start()`` is awaited.
"""

from __future__ import annotations

import re

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from shared.config import KafkaSettings
from shared.topics import Topics

DLQ_MAX_MESSAGE_BYTES = 2 * 1024 * 1024
"""A dead letter is the original record plus its ``tw.*`` headers: a record the broker
took at its 1 MiB default must still fit whole, so DLQ topics (and producers) take 2 MiB."""


class TopicCreationError(RuntimeError):
    """The broker refused to create one or more topics.

    ``errors`` holds ``(topic, kafka_error_name, message)`` for each refused topic."""

    def __init__(self, errors: list[tuple[str, str, str]]) -> None:
        self.errors = errors
        super().__init__(
            "; ".join(f"cannot create Kafka topic {topic!r}: {name}: {message}" for topic, name, message in errors)
        )


_ERROR_CODE = re.compile(r"\(error code (-?\d+)\)")
_RETRIABLE_CODES = frozenset({89})
"""Retriable CreateTopics codes aiokafka does not know: THROTTLING_QUOTA_EXCEEDED."""


def retriable(error_name: str) -> bool:
    """Whether a CreateTopics refusal (``TopicCreationError.errors``' name, as :func:`_refusals`
    writes it: "NOT_CONTROLLER (error code 41)") passes: the controller moving, a timeout,
    throttling. A name without a code is taken as permanent."""
    m = _ERROR_CODE.search(error_name)
    if m is None:
        return False
    code = int(m.group(1))
    return code in _RETRIABLE_CODES or bool(for_code(code).retriable)


def _refusals(response: object) -> list[tuple[str, str, str]]:
    """The per-topic errors of a CreateTopics response (any version), "already exists" left out.

    aiokafka returns these codes instead of raising; v0 has no message, so the error's
    description stands in."""
    out = []
    for entry in getattr(response, "topic_errors", ()):
        topic, code = entry[0], entry[1]
        if code == 0 or code == TopicAlreadyExistsError.errno:
            continue
        error = for_code(code)
        message = entry[2] if len(entry) > 2 and entry[2] else error.description
        out.append((topic, f"{error.message} (error code {code})", message))
    return out


def make_producer(settings: KafkaSettings, *, client_id: str, linger_ms: int = 5) -> AIOKafkaProducer:
    """An idempotent, ``acks=all`` producer."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id_prefix}-{client_id}",
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        max_request_size=DLQ_MAX_MESSAGE_BYTES,  # each topic's broker limit still applies
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
    settings: KafkaSettings,
    topics: list[str],
    *,
    partitions: int = 3,
    replication: int = 1,
    configs: dict[str, str] | None = None,
) -> None:
    """Create topics that do not exist yet (idempotent), with ``configs`` if given.

    A topic another client created meanwhile is fine; any other refusal (an invalid
    name, too high a replication factor, an invalid config, a policy) raises
    :class:`TopicCreationError` naming each topic and Kafka's error."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=t,
                        num_partitions=partitions,
                        replication_factor=replication,
                        topic_configs=configs or {},
                    )
                    for t in missing
                ]
            )
            refused = _refusals(response)
            if refused:
                raise TopicCreationError(refused)
    finally:
        await admin.close()


async def ensure_with_dlqs(settings: KafkaSettings, sources: list[str]) -> None:
    """The source topics and their dead-letter topics; a DLQ topic takes
    :data:`DLQ_MAX_MESSAGE_BYTES`, and one created before with less is raised to it."""
    dlqs = [Topics.dlq(t) for t in sources]
    await ensure_topics(settings, sources)
    await ensure_topics(settings, dlqs, configs={"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)})
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in dlqs])
        small = []
        for response in described:
            for _code, _msg, _type, name, entries in response.resources:
                limit = {e[0]: e[1] for e in entries}.get("max.message.bytes")
                if limit is not None and int(limit) < DLQ_MAX_MESSAGE_BYTES:
                    small.append(name)
        if small:
            await admin.alter_configs(
                [
                    ConfigResource(ConfigResourceType.TOPIC, t, {"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)})
                    for t in small
                ]
            )
    finally:
        await admin.close()
