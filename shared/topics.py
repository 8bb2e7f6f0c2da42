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

from pydantic import BaseModel, ConfigDict, Field

DLQ_SUFFIX = ".dlq"


class Topics(BaseModel):
    """Topic names, optionally under a prefix (``TW_TOPICS__PREFIX``)."""

    model_config = ConfigDict(frozen=True)

    prefix: str = Field(default="", description="Prepended to every topic name, e.g. 'test-1234.'.")

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
