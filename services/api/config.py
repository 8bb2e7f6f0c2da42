"""Settings of the HTTP API and dashboard (own fields ``TW_API_<FIELD>``, e.g. ``TW_API_PORT``)."""

from __future__ import annotations

from pydantic import Field

from shared.config import ServiceSettings


class ApiSettings(ServiceSettings):
    """The API process: where it listens, its request limits and read access policy."""

    host: str = Field(validation_alias="TW_API_HOST", default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(
        validation_alias="TW_API_PORT", default=8080, ge=1, le=65535, description="TCP port of the API and dashboard."
    )
    max_body_bytes: int = Field(
        validation_alias="TW_API_MAX_BODY_BYTES",
        default=1024 * 1024,
        ge=1024,
        description="Largest request body accepted; larger ones get 413.",
    )
    max_events_per_request: int = Field(
        validation_alias="TW_API_MAX_EVENTS_PER_REQUEST",
        default=1000,
        ge=1,
        description="Most events one POST /v1/events may carry.",
    )
    produce_timeout_s: float = Field(
        validation_alias="TW_API_PRODUCE_TIMEOUT_S",
        default=10.0,
        gt=0,
        le=300,
        description=(
            "Longest wait for Kafka to acknowledge a POST /v1/events batch, then 503 "
            "(retry with the ids in its details)."
        ),
    )
    read_timeout_s: float = Field(
        validation_alias="TW_API_READ_TIMEOUT_S",
        default=10.0,
        gt=0,
        le=300,
        description=(
            "Time limit of each database statement of a read endpoint (trends, watchlist, messages, routing, alerts, "
            "rules, and the opening read of the alert stream): "
            "PostgreSQL cancels a longer one and the request gets 503 query_timeout with Retry-After."
        ),
    )
    sse_poll_interval_s: float = Field(
        validation_alias="TW_API_SSE_POLL_INTERVAL_S",
        default=1.0,
        gt=0,
        le=60,
        description="How often the live alert feed polls the alerts table.",
    )
    sse_heartbeat_s: float = Field(
        validation_alias="TW_API_SSE_HEARTBEAT_S",
        default=15.0,
        gt=0,
        description=(
            "Keep-alive interval of the alert stream; with TW_API_REQUIRE_KEY_FOR_READS, also how often a "
            "stream's key is checked again (a revoked key's stream ends within one interval)."
        ),
    )
    require_key_for_reads: bool = Field(
        validation_alias="TW_API_REQUIRE_KEY_FOR_READS",
        default=False,
        description="Require an API key with the read scope on GET endpoints too.",
    )
    readiness_timeout_s: float = Field(
        validation_alias="TW_API_READINESS_TIMEOUT_S",
        default=3.0,
        gt=0,
        description="Time limit of each /readyz check.",
    )
    classifier_group_id: str = Field(
        validation_alias="TW_CLASSIFIER_GROUP_ID",
        default="tonewatch-classifier",
        min_length=1,
        description="The classifier's main consumer group, as the classifier reads it: GET /v1/status counts only "
        "its replicas as serving (other groups, such as a shadow classifier, are listed apart).",
    )
