"""Alerter service settings."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.config import ServiceSettings


class AlerterSettings(ServiceSettings):
    """Evaluates rules as buckets change (PostgreSQL NOTIFY), stores and publishes alerts, delivers webhooks."""

    baseline_windows: int = Field(
        validation_alias="TW_ALERTER_BASELINE_WINDOWS",
        default=12,
        ge=2,
        description="Previous windows that form the baseline.",
    )
    min_baseline_windows: int = Field(
        validation_alias="TW_ALERTER_MIN_BASELINE_WINDOWS",
        default=3,
        ge=1,
        description="Warm-up: windows with data (per model version) needed before a rule can fire.",
    )
    ewma_alpha: float = Field(
        validation_alias="TW_ALERTER_EWMA_ALPHA", default=0.3, gt=0, le=1, description="EWMA smoothing of the baseline."
    )
    std_floor: float = Field(
        validation_alias="TW_ALERTER_STD_FLOOR",
        default=0.05,
        gt=0,
        description="Smallest baseline std used in the z-score.",
    )
    max_steps: int = Field(
        validation_alias="TW_ALERTER_MAX_STEPS",
        default=1_440,
        ge=1,
        description="Most minutes evaluated per rule and entity per update.",
    )
    sweep_interval_s: float = Field(
        validation_alias="TW_ALERTER_SWEEP_INTERVAL_S",
        default=30.0,
        gt=0,
        description="Safety-net re-evaluation of active entities.",
    )
    allowed_lateness_s: int = Field(
        validation_alias="TW_ALERTER_ALLOWED_LATENESS_S",
        default=0,
        ge=0,
        le=86_400,
        description=(
            "Evaluate each entity only up to this many seconds before its latest data, so data that arrives up to "
            "this late (a lagging feed, a backlog) still counts towards alerts; alerts come that much later."
        ),
    )
    quiet_after_s: float = Field(
        validation_alias="TW_ALERTER_QUIET_AFTER_S",
        default=900.0,
        ge=0,
        description=(
            "An open alert whose entity has had no new data for this long (wall clock), while the stream's data "
            "moved on by more than the rule's window and resolve_after_s, resolves on those empty minutes."
        ),
    )
    top_messages: int = Field(
        validation_alias="TW_ALERTER_TOP_MESSAGES",
        default=5,
        ge=1,
        description="Most negative messages in an explanation.",
    )
    top_terms: int = Field(
        validation_alias="TW_ALERTER_TOP_TERMS", default=8, ge=1, description="Distinguishing terms in an explanation."
    )
    webhook_secret: SecretStr = Field(
        validation_alias="TW_ALERTER_WEBHOOK_SECRET",
        default=SecretStr("dev-webhook-secret"),
        description="HMAC-SHA256 key for webhook signatures.",
    )
    webhook_timeout_s: float = Field(
        validation_alias="TW_ALERTER_WEBHOOK_TIMEOUT_S", default=5.0, gt=0, description="Per-attempt webhook timeout."
    )
    webhook_max_attempts: int = Field(
        validation_alias="TW_ALERTER_WEBHOOK_MAX_ATTEMPTS",
        default=5,
        ge=1,
        description="Attempts per webhook delivery.",
    )
    webhook_backoff_s: float = Field(
        validation_alias="TW_ALERTER_WEBHOOK_BACKOFF_S",
        default=0.5,
        gt=0,
        description="First retry delay (doubles each attempt).",
    )
