"""Router service settings."""

from __future__ import annotations

from pydantic import Field

from shared.config import ServiceSettings

# A batch's decisions are recorded and counted in one transaction (array parameters, no
# limit there), then sent: the bound keeps a retried batch, its memory and its transaction modest.
MAX_BATCH = 10_000
# The longest ledger retention (about 100 years): an infinite one made every retention run
# fail (PostgreSQL: interval out of range).
MAX_RETENTION_DAYS = 36_500
# The highest anger threshold: ten strong cues is already more than any real chat scores; an
# infinite one switched anger detection off without a word.
MAX_ANGER_SCORE = 10.0
# Routing-table reloads: each one a database read, so not a busy loop (1e-9 s reloaded it without
# pause), and at least once a day (an infinite interval never picked up a new route).
MIN_ROUTES_REFRESH_S = 0.01
MAX_ROUTES_REFRESH_S = 86_400.0


class RouterSettings(ServiceSettings):
    """Consumes chat events from ``text.scored``, produces ``chat.queue.<queue>``."""

    group_id: str = Field(
        validation_alias="TW_ROUTER_GROUP_ID",
        default="tonewatch-router",
        min_length=1,
        description="Consumer group (not empty).",
    )
    max_batch: int = Field(
        validation_alias="TW_ROUTER_MAX_BATCH",
        default=500,
        ge=1,
        le=MAX_BATCH,
        description=(
            f"Most records per batch (recorded and counted in one database transaction, then sent); "
            f"at most {MAX_BATCH:,}."
        ),
    )
    max_wait_ms: int = Field(
        validation_alias="TW_ROUTER_MAX_WAIT_MS", default=100, ge=1, description="Longest wait to fill a batch."
    )
    confidence_threshold: float = Field(
        validation_alias="TW_ROUTER_CONFIDENCE_THRESHOLD",
        default=0.5,
        ge=0,
        le=1,
        description="Below this, route to human.",
    )
    ambiguity_margin: float = Field(
        validation_alias="TW_ROUTER_AMBIGUITY_MARGIN",
        default=0.1,
        ge=0,
        le=1,
        description="Top two intents closer: route to human.",
    )
    priority_negative_prob: float = Field(
        validation_alias="TW_ROUTER_PRIORITY_NEGATIVE_PROB",
        default=0.8,
        gt=0,
        le=1,
        description=(
            "Negative probability that flags priority and sends a chat routed to an intent's queue to escalations "
            "instead; a chat for human (low confidence, ambiguous, unknown intent) stays there, with priority. "
            "Above 0 (0 escalated every chat)."
        ),
    )
    anger_score: float = Field(
        validation_alias="TW_ROUTER_ANGER_SCORE",
        default=1.0,
        gt=0,
        le=MAX_ANGER_SCORE,
        allow_inf_nan=False,
        description=(
            "Anger score (cues in the chat's text: anger and abuse words, threats, profanity, shouting, "
            "repeated !! or ?!, angry emoji; one strong cue is 1, a weak one 0.5; only the first 4,000 characters "
            "are read) at which a chat counts as angry: "
            "it is flagged priority and routed as a strongly negative one. "
            f"At most {MAX_ANGER_SCORE:g}."
        ),
    )
    dlq_max_ratio: float = Field(
        validation_alias="TW_ROUTER_DLQ_MAX_RATIO",
        default=0.5,
        gt=0,
        le=1,
        description="Stop when more records fail than this.",
    )
    routes_refresh_s: float = Field(
        validation_alias="TW_ROUTER_ROUTES_REFRESH_S",
        default=15.0,
        ge=MIN_ROUTES_REFRESH_S,
        le=MAX_ROUTES_REFRESH_S,
        allow_inf_nan=False,
        description=(
            f"How often the routing table is reloaded ({MIN_ROUTES_REFRESH_S:g} s to {MAX_ROUTES_REFRESH_S:,.0f} s)."
        ),
    )
    ledger_retention_days: float = Field(
        validation_alias="TW_ROUTER_LEDGER_RETENTION_DAYS",
        default=30.0,
        gt=0,
        le=MAX_RETENTION_DAYS,
        allow_inf_nan=False,
        description=(
            "Keep the ids of sent chats this long; a copy redelivered later is routed again. "
            f"A chat recorded but not yet sent is never deleted. At most {MAX_RETENTION_DAYS:,} days."
        ),
    )
    retention_interval_s: float = Field(
        validation_alias="TW_ROUTER_RETENTION_INTERVAL_S",
        default=300.0,
        gt=0,
        description="How often expired ledger rows are deleted.",
    )
