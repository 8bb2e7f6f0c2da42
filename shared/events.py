"""Event contracts: the only place that knows the wire format.

Every event is JSON on the wire, carries ``schema_version``, an ``id`` and an
``event_time`` (timezone-aware, UTC on output). Producers assign an id when the
input lacks one; consumers that meet an id-less record derive a stable one from
its Kafka position (:func:`position_id`) so replays keep the same id.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from shared.labels import SENTIMENT_LABELS

Stream = Literal["news", "chat"]
AlertStatus = Literal["open", "acknowledged", "resolved"]
MAX_TEXT_CHARS = 1_000_000
# An encoded raw event must fit in one Kafka message (1 MiB by default, for the
# producer's request and the broker alike), with room for the key and headers.
# 1,000,000 ASCII characters fit; as many accented letters or emoji do not.
MAX_EVENT_BYTES = 1_040_000


EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)


def utc_in_range(value: datetime) -> datetime:
    """An aware ``value`` in UTC; ``ValueError`` outside [1900, 9000), where converting
    (0001-01-01T00:00+14:00) or window arithmetic would overflow."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_TIME <= utc < LATEST_TIME:
        raise ValueError(
            f"time {value.isoformat()} is out of range: use years {EARLIEST_TIME.year}-{LATEST_TIME.year - 1}"
        )
    return utc


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("event_time must carry a timezone (e.g. 2026-01-02T03:04:05Z)")
    return utc_in_range(value)


AwareDatetime = Annotated[datetime, AfterValidator(_aware_utc)]
EventId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\w.:@/-]+$")]


def new_id() -> str:
    """A fresh event id."""
    return uuid.uuid4().hex


def position_id(topic: str, partition: int, offset: int) -> str:
    """A stable id for a record that arrived without one."""
    digest = hashlib.sha256(f"{topic}/{partition}/{offset}".encode()).hexdigest()
    return f"pos-{digest[:32]}"


class Contract(BaseModel):
    """Base of all wire contracts: strict, immutable, versioned."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    schema_version: Literal[1] = 1

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class _RawBase(Contract):
    id: EventId
    event_time: AwareDatetime
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    source: str | None = Field(default=None, max_length=200)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be blank")
        return value


class RawNews(_RawBase):
    """A news headline or short article on ``news.raw``."""

    stream: Literal["news"] = "news"
    url: str | None = Field(default=None, max_length=2_000)


class RawChat(_RawBase):
    """A customer chat message on ``chat.raw``."""

    stream: Literal["chat"] = "chat"
    conversation_id: EventId
    customer_id: str | None = Field(default=None, max_length=128)
    channel: str | None = Field(default=None, max_length=64)


RawEvent = RawNews | RawChat


Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class Score(Contract):
    """One classifier's verdict. Lengths and ranges are what storage holds (a record the
    database refuses would stall its partition instead of being dead-lettered)."""

    label: str = Field(min_length=1, max_length=64)
    confidence: Probability
    probs: dict[Annotated[str, Field(min_length=1, max_length=64)], Probability]
    model: str = Field(max_length=128)
    version: str = Field(min_length=1, max_length=64)


class ScoredEvent(Contract):
    """A raw event after classification, on ``text.scored``.

    ``text`` is already redacted and capped for storage.
    """

    id: EventId
    stream: Stream
    event_time: AwareDatetime
    received_time: AwareDatetime
    text: str
    text_truncated: bool = False
    time_adjusted: bool = Field(default=False, description="event_time was in the future and was clamped")
    entities: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)
    sentiment: Score
    intent: Score | None = None
    conversation_id: str | None = Field(default=None, max_length=128)
    source: str | None = None

    @field_validator("sentiment")
    @classmethod
    def _sentiment_label(cls, score: Score) -> Score:
        if score.label not in SENTIMENT_LABELS:
            raise ValueError(f"sentiment label {score.label!r} is not one of {list(SENTIMENT_LABELS)}")
        return score

    @property
    def sentiment_score(self) -> float:
        """Positive minus negative probability, in [-1, 1]."""
        return self.sentiment.probs.get("positive", 0.0) - self.sentiment.probs.get("negative", 0.0)


class RoutedChat(Contract):
    """A chat message placed on a work queue ``chat.queue.<queue>``."""

    id: EventId
    conversation_id: str
    event_time: AwareDatetime
    queue: str
    intent: str
    confidence: float
    priority: bool
    reason: str
    text: str
    sentiment: str


class AlertEvent(Contract):
    """An alert state change on ``alerts``."""

    id: str
    rule_id: int
    rule_name: str
    entity: str
    stream: Stream
    severity: Literal["info", "warning", "critical"]
    status: AlertStatus
    window_start: AwareDatetime
    window_end: AwareDatetime
    fired_at: AwareDatetime
    explanation: dict[str, Any]


class DeadLetter(Contract):
    """Metadata of a dead-letter record. The record value keeps the original bytes;
    these fields travel as headers (``tw.*``) and are parsed back by ``tonewatch dlq``."""

    original_topic: str
    partition: int
    offset: int
    error_class: str
    reason: str
    service: str
    time: AwareDatetime


class InvalidEvent(ValueError):
    """Raised when a record cannot be decoded into its contract."""

    def __init__(self, reason: str, *, error_class: str = "InvalidEvent") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_class = error_class


def format_validation_error(exc: ValidationError) -> str:
    """Field-level, one line: ``text: String should have at least 1 character; ...``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


_C = TypeVar("_C", bound=Contract)


def parse(contract: type[_C], data: dict[str, Any]) -> _C:
    """Validate ``data`` into ``contract`` or raise :class:`InvalidEvent` with field errors."""
    try:
        return contract.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(format_validation_error(exc), error_class="ValidationError") from exc


def decode_json(value: bytes | None) -> dict[str, Any]:
    """Bytes to a JSON object, with clear errors for each way it can go wrong."""
    if value is None:
        raise InvalidEvent("empty record (tombstone)", error_class="EmptyRecord")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"invalid UTF-8 at byte {exc.start}", error_class="UnicodeDecodeError") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"malformed JSON: {exc.msg} at char {exc.pos}", error_class="JSONDecodeError") from exc
    if not isinstance(data, dict):
        raise InvalidEvent(f"expected a JSON object, got {type(data).__name__}", error_class="JSONDecodeError")
    return data


def decode_raw(
    value: bytes | None,
    *,
    stream: Stream,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None = None,
) -> RawEvent:
    """Decode a record from a raw topic. Missing ``id``/``event_time`` are filled
    from the record's position and timestamp; everything else must be valid."""
    data = decode_json(value)
    declared = data.get("stream", stream)
    if declared != stream:
        raise InvalidEvent(
            f"stream: unknown or mismatched stream {declared!r} on topic {topic} (expected {stream!r})",
            error_class="UnknownStream",
        )
    data.setdefault("stream", stream)
    if data.get("id") in (None, ""):
        data["id"] = position_id(topic, partition, offset)
    if data.get("event_time") in (None, "") and timestamp_ms is not None:
        data["event_time"] = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).isoformat()
    contract: type[RawEvent] = RawNews if stream == "news" else RawChat
    return parse(contract, data)


ALL_CONTRACTS: dict[str, type[Contract]] = {
    "raw_news": RawNews,
    "raw_chat": RawChat,
    "scored_event": ScoredEvent,
    "routed_chat": RoutedChat,
    "alert": AlertEvent,
    "dead_letter": DeadLetter,
}
