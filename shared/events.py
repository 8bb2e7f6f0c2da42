"""Event contracts: the only place that knows the wire format.

Every event is JSON on the wire, carries ``schema_version``, an ``id`` and an
``event_time`` (timezone-aware, UTC on output). Producers assign an id when the
input lacks one; consumers that meet an id-less record derive a stable one from
its Kafka position (:func:`position_id`) so replays keep the same id.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
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


# The published JSON Schemas (shared/schemas.py) describe what the validators below
# accept as closely as JSON Schema can; tests/unit/shared/test_schemas.py checks both
# on a table of edge cases. Python's ``re`` lets ``$`` match before a final newline, so
# the published patterns end in ``$(?!\n)``.
_END = r"$(?!\n)"
_DAY = r"(?:0[1-9]|[12]\d|3[01])"
_MONTH_DAY = rf"(?:0[1-9]|1[0-2])-{_DAY}"
_TIME = r"[Tt](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?"
_HHMM = r"(?:[01]\d|2[0-3]):[0-5]\d"
# Local dates whose every time and offset falls in [EARLIEST_TIME, LATEST_TIME) in UTC...
_SAFE_DATE = (
    rf"(?:(?:190[1-9]|19[1-9]\d|[2-7]\d{{3}}|8[0-8]\d{{2}}|899[0-8])-{_MONTH_DAY}"
    rf"|1900-(?:01-(?:0[2-9]|[12]\d|3[01])|(?:0[2-9]|1[0-2])-{_DAY})"
    rf"|8999-(?:(?:0[1-9]|1[01])-{_DAY}|12-(?:0[1-9]|[12]\d|30)))"
)
# ...and the two edge days, with the offsets that keep them in range (UTC = local - offset).
DATE_TIME_PATTERN = (
    rf"^(?:{_SAFE_DATE}{_TIME}(?:[Zz]|[+-]{_HHMM})"
    rf"|1900-01-01{_TIME}(?:[Zz]|[+-]00:00|-{_HHMM})"
    rf"|8999-12-31{_TIME}(?:[Zz]|[+-]00:00|\+{_HHMM})){_END}"
)
"""What :data:`AwareDatetime` accepts of RFC 3339 (JSON Schema's ``date-time``): an offset
is required, seconds stop at 59, and the UTC instant is in [1900, 9000) except near the
edges, where a local 1899-12-31, 9000-01-01, or a 1900-01-01 / 8999-12-31 whose offset could
cross the edge is refused even when it would convert into range (JSON Schema cannot subtract
an offset)."""
# pydantic reads a number as Unix seconds, or milliseconds when its magnitude exceeds 2e10.
_UNIX_SECONDS_MAX_ABS = 20_000_000_000
_AWARE_DATETIME_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN},
        {
            "type": "number",
            "minimum": int(EARLIEST_TIME.timestamp()),
            "exclusiveMaximum": int(LATEST_TIME.timestamp()) * 1000,
        },
        {
            "type": "number",
            "minimum": int(EARLIEST_TIME.timestamp()) * 1000,
            "exclusiveMaximum": -_UNIX_SECONDS_MAX_ABS,
        },
    ],
    "description": (
        f"An instant in [{EARLIEST_TIME:%Y-%m-%dT%H:%MZ}, {LATEST_TIME:%Y-%m-%dT%H:%MZ}) UTC. "
        "Either an RFC 3339 date-time with a UTC offset (Z or +hh:mm; a time without one is refused), "
        "or a Unix time: seconds, or milliseconds when its magnitude exceeds 2e10. "
        "Not expressible in JSON Schema, so this schema is stricter than the contract there: "
        "the range applies after converting to UTC, and the pattern refuses a local 1899-12-31 or 9000-01-01, "
        "and a 1900-01-01 with a positive or an 8999-12-31 with a negative offset, even when in range; "
        "the contract also takes '2026-01-02 03:04:05Z', '2026-01-02T03:04Z', '+0100' offsets, "
        "and a ',' before fractions; it refuses digits alone in a string (no Unix time as a string: "
        "a JSON number is one). Calendar validity (2026-02-30) needs the date-time format checked."
    ),
}
# What pydantic reads in a string as Unix seconds: "2026" would be 1970-01-01T00:33:46Z.
_DIGITS_ONLY = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")


def not_digits_only(value: object) -> object:
    """``value`` unchanged; ``ValueError`` for a string of digits alone (a sign and a decimal
    point allowed): pydantic would read ``"20261201"`` or ``"2026"`` as Unix seconds in 1970,
    where a caller meant a date. A JSON number is still a Unix time."""
    if isinstance(value, str) and _DIGITS_ONLY.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a time: use ISO 8601 (e.g. 2026-12-01T00:00:00Z); "
            "a string of digits alone is not read as Unix seconds"
        )
    return value


AwareDatetime = Annotated[
    datetime,
    BeforeValidator(not_digits_only),
    AfterValidator(_aware_utc),
    WithJsonSchema(_AWARE_DATETIME_SCHEMA, mode="validation"),
]


# Ids come from other systems: a support platform's conversation id may be an e-mail address
# ("jane+vip@example.com"), "conv 42" or "ticket#42", a message id may be base64 ("AAMk...=").
# Any printable text is taken as it is, spaces at either end included: ids are compared
# exactly (trimmed, a chat could join another conversation; refused, it would be lost).
# Refused: Unicode controls (C0, DEL, C1: a newline would split a log line), the line and
# paragraph separators and the bidirectional controls (they reorder what a log line or a
# terminal shows). A lone surrogate, which no UTF-8 consumer takes, pydantic's ``str`` refuses;
# the published pattern leaves it out: an engine reading UTF-16 units would refuse every emoji.
# Decoding a raw record (:func:`decode_json`) turns an id's lone surrogate escapes into
# U+FFFD and a digest of the id as sent (:func:`surrogate_free_id`), so no two ids merge.
ID_REFUSED_CLASS = r"\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
# Characters that show nothing alone: spaces (Zs), format characters (Cf; both of Unicode 14.0,
# Python 3.11's) and the Hangul, halfwidth Hangul and Braille fillers. An id of these alone is
# blank ("\u200b" looks like no id at all in a log line or the dashboard).
ID_INVISIBLE_CLASS = (
    r"\u0020\u00a0\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u1680\u180e"
    r"\u2000-\u200f\u202a-\u202f\u205f-\u2064\u2066-\u206f\u2800\u3000\u3164\ufeff\ufff9-\ufffb\uffa0"
)
ID_INVISIBLE_ASTRAL: tuple[tuple[int, int], ...] = (
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
"""The invisible characters beyond U+FFFF, as ranges. The pattern spells out each one, since
such a range in a class is a syntax error for an engine reading UTF-16 units."""
_ID_INVISIBLE_ASTRAL = "|".join(chr(c) for first, last in ID_INVISIBLE_ASTRAL for c in range(first, last + 1))
_ID_INVISIBLE = f"(?:[{ID_INVISIBLE_CLASS}]|{_ID_INVISIBLE_ASTRAL})"
MAX_ID_CHARS = 128
# Not invisible characters alone (checked ahead), then anything printable: linear.
EVENT_ID_SCHEMA_PATTERN = rf"^(?!{_ID_INVISIBLE}*$)[^{ID_REFUSED_CLASS}]*" + _END
_ID_REFUSED = re.compile(f"[{ID_REFUSED_CLASS}]")
_ID_INVISIBLE_ONLY = re.compile(f"{_ID_INVISIBLE}*")


def _printable_id(value: str) -> str:
    """``value`` unchanged; ``ValueError`` naming the first refused character by code point
    and position (never the id: it may hold an e-mail address), or if it has no visible
    character."""
    if bad := _ID_REFUSED.search(value):
        raise ValueError(
            f"must not contain U+{ord(bad.group()):04X} (at index {bad.start()}): "
            "no control, line separator or bidirectional control"
        )
    if _ID_INVISIBLE_ONLY.fullmatch(value):
        raise ValueError("must not be blank: no visible character, only spaces, format characters or fillers")
    return value


EventId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_ID_CHARS,
        json_schema_extra={
            "pattern": EVENT_ID_SCHEMA_PATTERN,
            "description": (
                f"1-{MAX_ID_CHARS} characters, compared exactly (spaces at either end are kept), at least "
                "one visible: not only spaces (Zs), format characters (Cf) or the fillers U+115F, U+1160, "
                "U+2800, U+3164 and U+FFA0; without controls (U+0000-U+001F, U+007F-U+009F), line or "
                "paragraph separators (U+2028, U+2029) or bidirectional controls (U+061C, U+200E, U+200F, "
                "U+202A-U+202E, U+2066-U+2069). The contract also refuses a lone surrogate (U+D800-U+DFFF), which this "
                "schema cannot say alike for engines that read strings as code points and as UTF-16 units."
            ),
        },
    ),
    AfterValidator(_printable_id),
]


def new_id() -> str:
    """A fresh event id."""
    return uuid.uuid4().hex


def position_id(topic: str, partition: int, offset: int) -> str:
    """A stable id for a record that arrived without one. A replayed dead letter is at a
    new place: the classifier passes its first place (``tw.origin``, see
    :func:`shared.kafka.dlq.record_origin`), so a replay keeps the id."""
    digest = hashlib.sha256(f"{topic}/{partition}/{offset}".encode()).hexdigest()
    return f"pos-{digest[:32]}"


class Contract(BaseModel):
    """Base of all wire contracts: strict, immutable, versioned."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    schema_version: Literal[1] = 1

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


# What ``str.strip`` removes (``str.isspace``), as a character class JSON Schema engines read alike.
WHITESPACE_CLASS = r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


class _RawBase(Contract):
    id: EventId
    event_time: AwareDatetime
    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        json_schema_extra={
            "pattern": f"[^{WHITESPACE_CLASS}]",
            "description": (
                "At least one character that is not whitespace. Not expressible in JSON Schema: "
                f"ingest refuses an event that is over {MAX_EVENT_BYTES:,} bytes once encoded as UTF-8."
            ),
        },
    )
    source: str | None = Field(default=None, max_length=200)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be blank")
        return value


class RawNews(_RawBase):
    """A news headline or short article on ``news.raw``. Ingest (file replay, ``POST /v1/events``)
    and the classifier fill in a missing or empty ``id`` or ``event_time``; the contract requires them."""

    stream: Literal["news"] = "news"
    url: str | None = Field(default=None, max_length=2_000)


class RawChat(_RawBase):
    """A customer chat message on ``chat.raw``. Ingest (file replay, ``POST /v1/events``)
    and the classifier fill in a missing or empty ``id`` or ``event_time``; the contract requires them.
    ``customer_id`` and ``channel`` are checked and not carried further (no queue, table or log
    names a customer: the conversation id stands for the chat)."""

    stream: Literal["chat"] = "chat"
    conversation_id: EventId
    customer_id: str | None = Field(default=None, max_length=128)
    channel: str | None = Field(default=None, max_length=64)


RawEvent = RawNews | RawChat


Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


def _no_nul(value: str) -> str:
    """``value`` unchanged; ``ValueError`` if it holds NUL, which PostgreSQL refuses in text
    and jsonb alike: a valid record the database refuses is retried for ever, its partition
    stalled as if PostgreSQL were down, instead of being dead-lettered at decode."""
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\x00): PostgreSQL cannot store it")
    return value


NO_NUL_PATTERN = r"^[^\u0000]*" + _END
_NO_NUL = AfterValidator(_no_nul)
StoredStr = Annotated[str, _NO_NUL, Field(json_schema_extra={"pattern": NO_NUL_PATTERN})]
"""A string storage can hold: no NUL."""


class Score(Contract):
    """One classifier's verdict. Lengths and ranges are what storage holds (a record the
    database refuses would stall its partition instead of being dead-lettered)."""

    label: StoredStr = Field(min_length=1, max_length=64)
    confidence: Probability
    # The pattern goes in propertyNames by hand: pydantic publishes a key pattern as
    # patternProperties, which would let any other key through unchecked.
    probs: dict[Annotated[str, Field(min_length=1, max_length=64), _NO_NUL], Probability] = Field(
        json_schema_extra={"propertyNames": {"minLength": 1, "maxLength": 64, "pattern": NO_NUL_PATTERN}}
    )
    model: StoredStr = Field(max_length=128)
    version: StoredStr = Field(min_length=1, max_length=64)


class ScoredEvent(Contract):
    """A raw event after classification, on ``text.scored``.

    ``text`` is already redacted and capped for storage; it may hold NUL (a raw text may),
    which the aggregator stores as U+FFFD. Every other string that is stored refuses NUL,
    so such a record is dead-lettered at decode.
    """

    id: EventId
    stream: Stream
    event_time: AwareDatetime
    received_time: AwareDatetime
    text: str
    text_truncated: bool = False
    time_adjusted: bool = Field(default=False, description="event_time was in the future and was clamped")
    entities: list[Annotated[StoredStr, Field(min_length=1, max_length=64)]] = Field(default_factory=list)
    sentiment: Score
    intent: Score | None = None
    conversation_id: Annotated[StoredStr, Field(max_length=128)] | None = None
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
    """A chat message placed on a work queue ``chat.queue.<queue>``. Its strings refuse NUL
    as a scored event's do (``text`` may hold it), so queue consumers can store them."""

    id: EventId
    conversation_id: StoredStr
    event_time: AwareDatetime
    queue: StoredStr
    intent: StoredStr
    confidence: float
    priority: bool
    reason: StoredStr
    text: str
    sentiment: StoredStr


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


# A surrogate escape (\ud800-\udfff) in JSON text; one left unpaired decodes to a lone
# surrogate, which no UTF-8 consumer takes: the tokenizer raises, PostgreSQL refuses it.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(data: Any) -> Any:
    """``data`` with every lone surrogate in its strings (keys included) made U+FFFD."""
    if isinstance(data, str):
        return _LONE_SURROGATE.sub("\ufffd", data)
    if isinstance(data, list):
        return [_without_lone_surrogates(v) for v in data]
    if isinstance(data, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in data.items()}
    return data


# The fields that identify an event (the aggregator keeps one per id and stream) or join
# it to others (a chat's conversation).
ID_FIELDS = ("id", "conversation_id")
_SURROGATE_ID_DIGITS = 32


def surrogate_free_id(value: str) -> str:
    """``value`` unchanged without a lone surrogate; with one, its lone surrogates made U+FFFD
    (still readable), then ``~`` and 32 hex digits of SHA-256 of ``value`` as JSON escapes it.

    A plain U+FFFD merged ids: ``"s-\\ud800"`` and ``"s-\\udbff"`` were both ``"s-\ufffd"``, so
    the aggregator kept the first event and dropped the second, and two conversations became
    one. The digest keeps them apart, and the same id always gives the same result (a
    redelivered record is still a duplicate). The readable part is cut to keep the result
    within :data:`MAX_ID_CHARS`; an id the contract refuses as sent (too long, or holding
    a control) keeps its length and characters, so it is refused alike (the reason names
    the position, which is the same)."""
    readable = _LONE_SURROGATE.sub("\ufffd", value)
    if readable == value or len(value) > MAX_ID_CHARS or _ID_REFUSED.search(readable):
        return readable
    digest = hashlib.sha256(json.dumps(value).encode()).hexdigest()[:_SURROGATE_ID_DIGITS]
    return f"{readable[: MAX_ID_CHARS - _SURROGATE_ID_DIGITS - 1]}~{digest}"


def json_error(exc: json.JSONDecodeError) -> str:
    """``malformed JSON: Unterminated string starting at char 39``: the decoder's message ends
    in "at" for some errors ("Invalid control character at"), which read "at at char" or lost
    their position."""
    return f"malformed JSON: {exc.msg.removesuffix(' at')} at char {exc.pos}"


def decode_json(value: bytes | None) -> dict[str, Any]:
    """Bytes to a JSON object, with clear errors for each way it can go wrong (JSON nested
    too deeply to read, or an integer too long to convert, included: no contract holds
    either, so they are ``JSONDecodeError`` too, which a plain DLQ replay leaves). An unpaired
    surrogate escape (``"\\ud800"``, valid JSON) becomes U+FFFD, as an invalid byte would in
    a lenient decoder: the rest of the text is still scored and stored. In an id (top-level
    :data:`ID_FIELDS`) it becomes :func:`surrogate_free_id`, so two ids stay two."""
    if value is None:
        raise InvalidEvent("empty record (tombstone)", error_class="EmptyRecord")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"invalid UTF-8 at byte {exc.start}", error_class="UnicodeDecodeError") from exc
    try:
        data = json.loads(text)
        if isinstance(data, dict) and _SURROGATE_ESCAPE.search(text):
            ids = {k: surrogate_free_id(v) for k in ID_FIELDS if isinstance(v := data.get(k), str)}
            data = dict(_without_lone_surrogates(data)) | ids
    except json.JSONDecodeError as exc:
        raise InvalidEvent(json_error(exc), error_class="JSONDecodeError") from exc
    except RecursionError as exc:  # the decoder recurses once per level of nesting, the surrogate fix twice
        raise InvalidEvent("malformed JSON: nested too deeply", error_class="JSONDecodeError") from exc
    except ValueError as exc:  # an integer too long to convert (over 4,300 digits)
        raise InvalidEvent(f"malformed JSON: {exc}", error_class="JSONDecodeError") from exc
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
