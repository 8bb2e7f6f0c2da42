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
        headers = message.headers or ()
        if isinstance(headers, dict):
            headers = list(headers.items())
        ts = message.timestamp
        return cls(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            [(k, v if isinstance(v, bytes) else str(v).encode()) for k, v in headers],
            int(ts * 1000) if ts else None,
        )
