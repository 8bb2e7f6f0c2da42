"""Alerter service settings."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.config import ServiceSettings


class AlerterSettings(ServiceSettings):
    """Evaluates rules as buckets change (PostgreSQL NOTIFY), stores and publishes alerts, delivers webhooks."""

    baseline_windows: int = Field(default=12, ge=2, description="Previous windows that form the baseline.")
    min_baseline_windows: int = Field(
        default=3, ge=1, description="Warm-up: windows with data (per model version) needed before a rule can fire."
    )
    ewma_alpha: float = Field(default=0.3, gt=0, le=1, description="EWMA smoothing of the baseline.")
    std_floor: float = Field(default=0.05, gt=0, description="Smallest baseline std used in the z-score.")
    max_steps: int = Field(default=1_440, ge=1, description="Most minutes evaluated per rule and entity per update.")
    sweep_interval_s: float = Field(default=30.0, gt=0, description="Safety-net re-evaluation of active entities.")
    top_messages: int = Field(default=5, ge=1, description="Most negative messages in an explanation.")
    top_terms: int = Field(default=8, ge=1, description="Distinguishing terms in an explanation.")
    webhook_secret: SecretStr = Field(
        default=SecretStr("dev-webhook-secret"), description="HMAC-SHA256 key for webhook signatures."
    )
    webhook_timeout_s: float = Field(default=5.0, gt=0, description="Per-attempt webhook timeout.")
    webhook_max_attempts: int = Field(default=5, ge=1, description="Attempts per webhook delivery.")
    webhook_backoff_s: float = Field(default=0.5, gt=0, description="First retry delay (doubles each attempt).")
