"""A broker-neutral view of a consumed record (aiokafka or faust)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    timestamp_ms: int | None

    @property
    def place(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @classmethod
    def from_aiokafka(cls, rec: Any) -> InRecord:
        return cls(rec.topic, rec.partition, rec.offset, rec.key, rec.value, list(rec.headers or ()), rec.timestamp)

    @classmethod
    def from_faust(cls, message: Any) -> InRecord:
        """faust passes aiokafka's headers on: a header without a value is ``None`` (Kafka's
        null), kept as such, as :meth:`from_aiokafka` does, so a dead letter and its replay
        carry it as null (it became ``b"None"``)."""
        headers = message.headers or ()
        if isinstance(headers, dict):
            headers = headers.items()
        ts = message.timestamp
        return cls(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            list(headers),
            int(ts * 1000) if ts else None,
        )
