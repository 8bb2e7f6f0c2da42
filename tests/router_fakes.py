"""A fake Kafka broker for the router's unit tests: one that does not auto-create topics."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka.errors import KafkaTimeoutError

from shared.events import RoutedChat
from shared.kafka.clients import TopicCreationError


class Broker:
    """Topics exist only once created (auto-create off). ``fail`` maps a topic to the CreateTopics
    errors (name) it answers, one per attempt, before it creates it; ``refuse`` names topics it
    never creates (a policy violation); ``missing_error`` is what a send to a topic without
    metadata raises (the producer waits on metadata that never has it)."""

    def __init__(
        self, topics: Iterable[str], fail: dict[str, list[str]] | None = None, refuse: Iterable[str] = ()
    ) -> None:
        self.topics = set(topics)
        self.fail = fail or {}
        self.refuse = set(refuse)
        self.missing_error: type[Exception] = KafkaTimeoutError
        self.chats: list[tuple[str, RoutedChat]] = []
        self.letters: list[tuple[str, dict[str, bytes]]] = []
        self.creations: list[list[str]] = []

    @property
    def sent(self) -> list[tuple[str, str]]:
        """(topic, chat id) of every chat sent, in order."""
        return [(t, c.id) for t, c in self.chats]

    async def ensure_topics(self, _: Any, topics: list[str], **__: Any) -> None:
        self.creations.append(list(topics))
        errors = []
        for t in topics:
            if t in self.topics:
                continue
            if t in self.refuse:
                errors.append((t, "PolicyViolation (error code 44)", "topic creation refused"))
            elif self.fail.get(t):
                errors.append((t, self.fail[t].pop(0), "creation failed"))
            else:
                self.topics.add(t)
        if errors:
            raise TopicCreationError(errors)

    async def send_all(self, _: Any, records: Iterable[tuple[str, bytes, bytes]], **__: Any) -> int:
        records = list(records)
        for topic, _key, _value in records:
            if topic not in self.topics:
                raise self.missing_error(f"topic {topic} not in metadata")
        self.chats += [(t, RoutedChat.model_validate_json(v)) for t, _, v in records]
        return len(records)

    async def send_and_wait(self, topic: str, *, value: bytes, key: bytes, headers: Any) -> None:
        self.letters.append((topic, dict(headers)))
