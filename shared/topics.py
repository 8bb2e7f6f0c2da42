"""The one documented place for Kafka topic names.

| topic                 | key               | value contract   | written by  | read by             |
|-----------------------|-------------------|------------------|-------------|---------------------|
| ``news.raw``          | event id          | ``RawNews``      | ingest, API | classifier          |
| ``chat.raw``          | conversation id   | ``RawChat``      | ingest, API | classifier          |
| ``text.scored``       | entity / conv. id | ``ScoredEvent``  | classifier  | aggregator, router  |
| ``chat.queue.<q>``    | conversation id   | ``RoutedChat``   | router      | support work queues |
| ``alerts``            | rule:entity       | ``AlertEvent``   | alerter     | dashboards, bots    |
| ``<topic>.dlq``       | original key      | original bytes   | any consumer| ``tonewatch dlq``   |

A ``prefix`` lets tests and parallel environments use their own topics.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

DLQ_SUFFIX = ".dlq"

MAX_TOPIC_NAME_LENGTH = 249
"""Kafka's limit on a topic name."""

QUEUE_NAME_MAX_LENGTH = 64
"""A routing queue's name at most (``routing_rules.queue`` is ``VARCHAR(64)``)."""

LONGEST_SUFFIX_LENGTH = max(
    *(len(f"{base}{DLQ_SUFFIX}") for base in ("news.raw", "chat.raw", "text.scored", "alerts")),
    len("chat.queue.") + QUEUE_NAME_MAX_LENGTH,
)
"""The longest name a prefix goes before: a work queue's topic with the longest queue name (75)."""

MAX_PREFIX_LENGTH = MAX_TOPIC_NAME_LENGTH - LONGEST_SUFFIX_LENGTH

_TOPIC_CHARS = re.compile(r"[a-zA-Z0-9._-]*")


class Topics(BaseModel):
    """Topic names, optionally under a prefix (``TW_TOPICS__PREFIX``)."""

    model_config = ConfigDict(frozen=True)

    prefix: str = Field(
        default="",
        description=(
            "Prepended to every topic name, e.g. 'test-1234.'. Kafka's topic name characters only "
            f"(letters, digits, '.', '_', '-'), at most {MAX_PREFIX_LENGTH} characters."
        ),
    )

    @field_validator("prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        if not _TOPIC_CHARS.fullmatch(value):
            raise ValueError(
                f"TW_TOPICS__PREFIX {value!r} would make invalid Kafka topic names: "
                "use only [a-zA-Z0-9._-] (letters, digits, '.', '_', '-')"
            )
        if len(value) > MAX_PREFIX_LENGTH:
            raise ValueError(
                f"TW_TOPICS__PREFIX is {len(value)} characters: at most {MAX_PREFIX_LENGTH} characters, "
                f"so that every topic name fits Kafka's {MAX_TOPIC_NAME_LENGTH}"
            )
        return value

    def _name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def news_raw(self) -> str:
        return self._name("news.raw")

    @property
    def chat_raw(self) -> str:
        return self._name("chat.raw")

    @property
    def text_scored(self) -> str:
        return self._name("text.scored")

    @property
    def alerts(self) -> str:
        return self._name("alerts")

    def raw(self, stream: str) -> str:
        """Raw topic of a stream (``news`` or ``chat``)."""
        if stream == "news":
            return self.news_raw
        if stream == "chat":
            return self.chat_raw
        raise ValueError(f"unknown stream {stream!r}: expected 'news' or 'chat'")

    def queue(self, queue: str) -> str:
        """Work-queue topic for routed chats."""
        return self._name(f"chat.queue.{queue}")

    @staticmethod
    def dlq(topic: str) -> str:
        """Dead-letter topic of an input topic."""
        return f"{topic}{DLQ_SUFFIX}"
