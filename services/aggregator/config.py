"""Aggregator service settings."""

from __future__ import annotations

from pydantic import Field

from shared.config import ServiceSettings


class AggregatorSettings(ServiceSettings):
    """Consumes ``text.scored``, writes trend buckets and scored events to PostgreSQL."""

    group_id: str = Field(
        validation_alias="TW_AGGREGATOR_GROUP_ID", default="tonewatch-aggregator", description="Consumer group."
    )
    max_batch: int = Field(
        validation_alias="TW_AGGREGATOR_MAX_BATCH",
        default=1_000,
        ge=1,
        description="Most records per database transaction.",
    )
    max_wait_ms: int = Field(
        validation_alias="TW_AGGREGATOR_MAX_WAIT_MS", default=200, ge=1, description="Longest wait to fill a batch."
    )
    scored_retention_days: float = Field(
        validation_alias="TW_AGGREGATOR_SCORED_RETENTION_DAYS",
        default=7.0,
        gt=0,
        description="Keep scored event text, and the alert explanations' quotes of it (by firing time), this long.",
    )
    ledger_retention_days: float = Field(
        validation_alias="TW_AGGREGATOR_LEDGER_RETENTION_DAYS",
        default=30.0,
        gt=0,
        description="Keep counted-event ids this long; replays older than this would recount.",
    )
    retention_interval_s: float = Field(
        validation_alias="TW_AGGREGATOR_RETENTION_INTERVAL_S",
        default=300.0,
        gt=0,
        description="How often expired rows are deleted.",
    )
    dlq_max_ratio: float = Field(
        validation_alias="TW_AGGREGATOR_DLQ_MAX_RATIO",
        default=0.5,
        gt=0,
        le=1,
        description="Stop when more records fail than this.",
    )
