"""Classifier service settings."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, SecretStr

from shared.config import ServiceSettings, is_placeholder
from shared.inference.device import physical_cores
from shared.inference.settings import InferenceSettings

DEV_PSEUDONYM_KEY = "dev-pseudonym-key"
"""The development default; the classifier refuses to start with it in production."""
MIN_PSEUDONYM_KEY_CHARS = 16
FAUST_STREAM_BUFFER = 4096
"""faust's default ``stream_buffer_maxsize``, in records."""
BUFFER_BATCHES = 4
"""The stream buffer holds this many windows of ``concurrent_batches`` batches."""
FETCH_MAX_BYTES = 1024 * 1024
"""Most bytes fetched per partition at once: one raw event at most (``MAX_EVENT_BYTES``)."""
MAX_BATCH_BYTES = 64 * 1024 * 1024
"""Upper bound of ``TW_CLASSIFIER_BATCH_MAX_BYTES``: the stream buffer holds 4 x this x
``concurrent_batches`` bytes, and a batch is scored in one step."""
MAX_FUTURE_SKEW_S = 10 * 365.25 * 86_400
"""Upper bound of ``TW_CLASSIFIER_MAX_FUTURE_SKEW_S``: ten years. Past that the setting is a
mistake (a value in milliseconds, ``inf``), and ``received + skew`` would pass the calendar's
end: every record was dead-lettered with ``OverflowError``."""
STATUS_TTL_S = 60.0
"""A replica's status is dropped this long after it was last published (every 15 s)."""
STATUS_AHEAD_S = 5.0
"""A status stamped further ahead of Redis's clock than this is stale: statuses are stamped
with Redis's time, so only one stamped otherwise (or before Redis's clock was set back) is."""


def status_key(topic_prefix: str) -> str:
    """Redis hash of the statuses of the classifier replicas under ``topic_prefix``
    (``TW_TOPICS__PREFIX``): one field per consumer group and replica (:func:`status_field`),
    so environments, shadow groups and replicas do not overwrite each other's."""
    return f"tw:classifier:status:{topic_prefix}"


def status_field(group: str, replica: str) -> str:
    return json.dumps([group, replica])


def redis_seconds(time_reply: tuple[int, int]) -> float:
    """Redis's ``TIME`` reply (seconds, microseconds) in seconds."""
    seconds, micros = time_reply
    return seconds + micros / 1_000_000


def fresh_statuses(fields: dict[Any, Any], now: float) -> list[dict[str, Any]]:
    """The statuses of a :func:`status_key` hash published within :data:`STATUS_TTL_S` before
    ``now`` and at most :data:`STATUS_AHEAD_S` after it, by group and replica; a field that is
    no status is left out. ``now`` and the stamps are Redis's time (``TIME``): each host's
    clock would drop a live replica whose host is behind and keep a dead one that was ahead."""
    statuses = []
    for raw in fields.values():
        try:
            status = json.loads(raw)
            fresh = -STATUS_AHEAD_S <= now - float(status["published_at"]) <= STATUS_TTL_S
            named = isinstance(status["group"], str) and isinstance(status["replica"], str)
        except (ValueError, TypeError, KeyError):
            continue
        if fresh and named:
            statuses.append(status)
    return sorted(statuses, key=lambda s: (s["group"], s["replica"]))


class ClassifierSettings(ServiceSettings):
    """Consumes ``news.raw`` and ``chat.raw``, produces ``text.scored``."""

    group_id: str = Field(
        validation_alias="TW_CLASSIFIER_GROUP_ID",
        default="tonewatch-classifier",
        description="Consumer group (faust app id).",
    )
    session_timeout_s: float = Field(
        validation_alias="TW_CLASSIFIER_SESSION_TIMEOUT_S",
        default=15.0,
        ge=6,
        le=300,
        description="Group session timeout: how soon a classifier that died loses its partitions to the others.",
    )
    sentiment_version: str | None = Field(
        validation_alias="TW_CLASSIFIER_SENTIMENT_VERSION",
        default=None,
        description="Sentiment model version; default: promoted.",
    )
    intent_version: str | None = Field(
        validation_alias="TW_CLASSIFIER_INTENT_VERSION",
        default=None,
        description="Intent model version; default: promoted.",
    )
    inference: InferenceSettings = Field(default_factory=InferenceSettings)

    batch_max: int = Field(
        validation_alias="TW_CLASSIFIER_BATCH_MAX",
        default=256,
        ge=1,
        description="Most records per classification batch.",
    )
    concurrent_batches: int = Field(
        validation_alias="TW_CLASSIFIER_CONCURRENT_BATCHES",
        default=2,
        ge=1,
        le=16,
        description=(
            "Batches classified at once. On CPU each ONNX run gets cores / N ORT threads "
            "unless TW_INFERENCE__INTRA_OP_THREADS is set, and the length buckets of all "
            "batches in flight share cores / threads workers: independent runs keep both "
            "cores busy where one run split across threads waits on its slowest thread."
        ),
    )
    batch_max_bytes: int = Field(
        validation_alias="TW_CLASSIFIER_BATCH_MAX_BYTES",
        default=8 * 1024 * 1024,
        ge=64 * 1024,
        le=MAX_BATCH_BYTES,
        description=(
            "Most bytes of raw record values per classification batch, at most 64 MiB "
            "(a larger record is classified alone). "
            "The stream buffer holds at most 4 x this x TW_CLASSIFIER_CONCURRENT_BATCHES bytes of records."
        ),
    )
    batch_within_s: float = Field(
        validation_alias="TW_CLASSIFIER_BATCH_WITHIN_S", default=0.05, gt=0, description="Longest wait to fill a batch."
    )
    max_future_skew_s: float = Field(
        validation_alias="TW_CLASSIFIER_MAX_FUTURE_SKEW_S",
        default=300.0,
        ge=0,
        le=MAX_FUTURE_SKEW_S,
        allow_inf_nan=False,
        description=(
            "Event times further in the future are clamped to the receive time. "
            "A finite number of seconds, at most 10 years (315,576,000)."
        ),
    )
    pseudonym_key: SecretStr = Field(
        validation_alias="TW_CLASSIFIER_PSEUDONYM_KEY",
        default=SecretStr(DEV_PSEUDONYM_KEY),
        description=(
            "HMAC-SHA256 key of the pseudonyms that replace event and conversation ids holding an email address, "
            "a phone, card or IBAN number (pii-<32 hex>); keep it secret and stable: a new key gives new pseudonyms."
        ),
    )
    storage_text_chars: int = Field(
        validation_alias="TW_CLASSIFIER_STORAGE_TEXT_CHARS",
        default=4_000,
        ge=100,
        le=100_000,  # a scored event must stay under the broker's 1 MiB record limit
        description="Text is capped to this many chars (at most 100,000).",
    )
    watchlist_refresh_s: float = Field(
        validation_alias="TW_CLASSIFIER_WATCHLIST_REFRESH_S",
        default=15.0,
        gt=0,
        description="How often the watchlist is checked; the matcher is rebuilt (off the event loop) when it changed.",
    )
    dlq_max_ratio: float = Field(
        validation_alias="TW_CLASSIFIER_DLQ_MAX_RATIO",
        default=0.5,
        gt=0,
        le=1,
        description="Stop when more records fail than this.",
    )

    def production_secret_refusal(self) -> str | None:
        """Why the pseudonym key may not be used in production (naming the variable, never
        the value), or None: with a public or short key, the pseudonym of an email address
        is found by hashing candidate addresses."""
        if self.environment != "production":
            return None
        key = self.pseudonym_key.get_secret_value()
        if key == DEV_PSEUDONYM_KEY:
            return "TW_CLASSIFIER_PSEUDONYM_KEY is the development default in production"
        if is_placeholder(key):
            return "TW_CLASSIFIER_PSEUDONYM_KEY is a placeholder (such as .env.example's) in production"
        if len(key.strip()) < MIN_PSEUDONYM_KEY_CHARS:
            return (
                f"TW_CLASSIFIER_PSEUDONYM_KEY is blank or shorter than {MIN_PSEUDONYM_KEY_CHARS} characters "
                "in production"
            )
        return None

    def stream_buffer_records(self) -> int:
        """faust's stream buffer, in records: its fetcher sleeps a whole second once every
        partition is paused on a full buffer, so the buffer must hold about a second of
        work (a buffer of 1,024 headlines starved a 1,500 events/s consumer)."""
        return max(FAUST_STREAM_BUFFER, BUFFER_BATCHES * self.batch_max * self.concurrent_batches)

    def stream_buffer_bytes(self) -> int:
        """faust's stream buffer, in bytes of record values: what bounds memory on large
        records, where a count of records does not (4,096 one-megabyte articles)."""
        return BUFFER_BATCHES * self.batch_max_bytes * self.concurrent_batches

    def fetch_max_bytes(self) -> int:
        """Bytes the broker returns per partition and fetch (a larger record comes alone)."""
        return min(self.batch_max_bytes, FETCH_MAX_BYTES)

    def model_settings(self) -> InferenceSettings:
        """Inference settings for ``concurrent_batches`` batches sharing the cores.

        Each ONNX run gets cores / ``concurrent_batches`` threads, and unless
        ``TW_INFERENCE__PARALLEL_BUCKETS`` is set, the length buckets of every batch in
        flight go to cores / threads workers, and the ONNX runs of every model share the
        process's cores (:class:`shared.inference.engine.CoreBudget`): when a single batch is
        left (the start and end of a burst, or while the event loop fetches the next
        one) its buckets still use every core."""
        cores = physical_cores()
        threads = self.inference.intra_op_threads or max(1, cores // self.concurrent_batches)
        update: dict[str, int] = {"intra_op_threads": threads}
        if "parallel_buckets" not in self.inference.model_fields_set:
            update["parallel_buckets"] = max(1, cores // threads)
        return self.inference.model_copy(update=update)
