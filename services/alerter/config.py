"""Alerter service settings."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from services.alerter.netguard import AddressPolicy
from shared.config import ServiceSettings, is_placeholder

DEV_WEBHOOK_SECRET = "dev-webhook-secret"  # noqa: S105 - public on purpose, refused in production
"""The development default; the alerter refuses to start with it in production."""
MIN_WEBHOOK_SECRET_CHARS = 16
"""The shortest webhook secret (blanks around it not counted) the alerter starts with in
production: with an empty or short key anyone can compute, or guess, a valid signature."""
MAX_BACKOFF_S = 300.0
"""The longest wait between two attempts of a webhook: the delay doubles from
``TW_ALERTER_WEBHOOK_BACKOFF_S`` up to this, not further (uncapped, 20 attempts would end on
a 36-hour wait, and the claim's lease, which counts every wait, would grow past what a
``timedelta`` holds)."""
DEFAULT_WEBHOOK_GIVE_UP_S = 3600.0
"""How long an alert's webhook channel that only fails transiently is retried, counted from
its first recorded delivery attempt, before it is given up (``TW_ALERTER_WEBHOOK_GIVE_UP_S``)."""
MAX_WEBHOOK_ATTEMPTS = 20
MAX_WEBHOOK_TIMEOUT_S = 300.0
"""Upper bounds of the attempts and of one attempt's timeout: with the capped backoff they
keep the lease (every attempt, every wait) finite and within a few hours."""


class WebhookNetworkSettings(ServiceSettings):
    """Which internal networks webhooks may reach: the part of :class:`AlerterSettings`
    the API reads too (``WebhookNetworkSettings()``), to check URLs when a rule is saved,
    so that one variable configures both."""

    webhook_allowed_networks: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = Field(
        validation_alias="TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS",
        default=(),
        description=(
            "Comma-separated networks (CIDR, or one address) webhooks may reach although they are not public, e.g. "
            "an in-house Slack proxy on 10.1.2.0/24, or 127.0.0.1/32,::1/128 for a local receiver. Empty: webhooks "
            "reach public addresses only (no loopback, private, link-local or cloud metadata, shared, multicast or "
            "reserved address). The API reads it too, to refuse such addresses when a rule is saved."
        ),
    )

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part for part in value.replace(",", " ").split() if part)
        return value

    def webhook_policy(self) -> AddressPolicy:
        """The address policy webhooks are delivered (and rules saved) under."""
        return AddressPolicy(allowed=tuple(self.webhook_allowed_networks))


class AlerterSettings(WebhookNetworkSettings):
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
    history_s: int = Field(
        validation_alias="TW_ALERTER_HISTORY_S",
        default=7 * 86_400,
        ge=0,
        le=7 * 86_400,
        description=(
            "Cold start: while fewer than TW_ALERTER_MIN_BASELINE_WINDOWS of the baseline's windows had data "
            "(a quiet night, a sparse entity), a window is judged against the entity's negative share pooled "
            "over this much history before it, weighed by the window's volume (an entity with no data older "
            "than the baseline's windows: the whole stream's, before the day); a model version's first day "
            "has neither, so a newly promoted model still warms up, and a rule whose baseline spans "
            "this long or longer (window x TW_ALERTER_BASELINE_WINDOWS: windows of 14 h and up with the "
            "defaults) has no cold start. 0 turns it off (no alert until the warm-up's windows have data). "
            "At most 7 days."
        ),
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
        default=SecretStr(DEV_WEBHOOK_SECRET),
        description="HMAC-SHA256 key for webhook signatures.",
    )
    webhook_timeout_s: float = Field(
        validation_alias="TW_ALERTER_WEBHOOK_TIMEOUT_S",
        default=5.0,
        gt=0,
        le=MAX_WEBHOOK_TIMEOUT_S,
        description=f"Per-attempt webhook timeout (at most {MAX_WEBHOOK_TIMEOUT_S:g} s).",
    )
    webhook_max_attempts: int = Field(
        validation_alias="TW_ALERTER_WEBHOOK_MAX_ATTEMPTS",
        default=5,
        ge=1,
        le=MAX_WEBHOOK_ATTEMPTS,
        description=f"Attempts per webhook delivery (at most {MAX_WEBHOOK_ATTEMPTS}).",
    )
    webhook_backoff_s: float = Field(
        validation_alias="TW_ALERTER_WEBHOOK_BACKOFF_S",
        default=0.5,
        gt=0,
        le=MAX_BACKOFF_S,
        description=f"First retry delay (doubles each attempt, up to {MAX_BACKOFF_S:g} s).",
    )
    webhook_give_up_s: float = Field(
        validation_alias="TW_ALERTER_WEBHOOK_GIVE_UP_S",
        default=DEFAULT_WEBHOOK_GIVE_UP_S,
        ge=0,
        le=7 * 86_400,
        description=(
            "How long a webhook channel that fails only transiently (5xx, 408/425/429, timeouts, connection errors) "
            "is retried, counted from the alert's first recorded attempt on that channel: once a pass's "
            "TW_ALERTER_WEBHOOK_MAX_ATTEMPTS are used up, later passes retry it (waiting as long as it has been "
            f"failing, at most {MAX_BACKOFF_S:g} s); past this age it is given up, logged as an error and counted "
            "in tonewatch_webhook_give_ups. 0: given up after one pass's attempts."
        ),
    )

    @model_validator(mode="after")
    def _baseline_can_warm_up(self) -> AlerterSettings:
        """A rule needs ``min_baseline_windows`` baseline windows with data before it can
        fire, and the baseline holds at most ``baseline_windows``: more, and no rule ever fires."""
        if self.min_baseline_windows > self.baseline_windows:
            raise ValueError(
                f"TW_ALERTER_MIN_BASELINE_WINDOWS ({self.min_baseline_windows}) is larger than "
                f"TW_ALERTER_BASELINE_WINDOWS ({self.baseline_windows}): no rule could ever fire; "
                "set it to at most TW_ALERTER_BASELINE_WINDOWS"
            )
        return self

    def production_secret_refusal(self) -> str | None:
        """Why the webhook secret may not sign production webhooks (naming the variable,
        never the value), or None: the public development default, or a blank or short
        key, lets anyone sign a webhook our receivers trust."""
        if self.environment != "production":
            return None
        secret = self.webhook_secret.get_secret_value()
        if secret == DEV_WEBHOOK_SECRET:
            return "TW_ALERTER_WEBHOOK_SECRET is the development default in production"
        if len(secret.strip()) < MIN_WEBHOOK_SECRET_CHARS:
            return (
                f"TW_ALERTER_WEBHOOK_SECRET is blank or shorter than {MIN_WEBHOOK_SECRET_CHARS} characters "
                "in production"
            )
        if is_placeholder(secret):
            return "TW_ALERTER_WEBHOOK_SECRET is a placeholder (a common default or .env.example's) in production"
        return None
