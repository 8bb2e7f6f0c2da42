"""Aggregator service settings."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from shared.config import ServiceSettings

# How far back the alerter reads the trend buckets, from a stream's newest minute (at most
# now). At minute ``t`` a rule sums its window and the ``TW_ALERTER_BASELINE_WINDOWS``
# windows before it, reading from ``t - (baseline_windows + 1) * window_s``
# (services/alerter/detect.py ``spans``/``baseline``); ``t`` runs up to
# ``TW_ALERTER_MAX_STEPS`` minutes behind the key's latest minute, which is held back by
# ``TW_ALERTER_ALLOWED_LATENESS_S`` (services/alerter/evaluate.py ``evaluate``).
ALERTER_LONGEST_WINDOW_DAYS = 7
"""A rule's longest window: ``RuleSpec.window_s`` (services/alerter/rules.py), at most 7 days."""
ALERTER_BASELINE_WINDOWS = 12
"""``TW_ALERTER_BASELINE_WINDOWS``' default: the windows before the current one a baseline holds."""
ALERTER_WALK_DAYS = 1
"""``TW_ALERTER_MAX_STEPS``' default, 1,440 minutes: how far behind the latest minute a rule is evaluated."""
ALERTER_LATENESS_DAYS = 1
"""``TW_ALERTER_ALLOWED_LATENESS_S``' largest value, 86,400 s."""
MIN_TREND_RETENTION_DAYS = (
    (ALERTER_BASELINE_WINDOWS + 1) * ALERTER_LONGEST_WINDOW_DAYS + ALERTER_WALK_DAYS + ALERTER_LATENESS_DAYS
)
"""The shortest trend retention (93 days): a 7-day rule's baseline of 12 windows and its own
window (91 days), evaluated up to a day behind the latest minute held back by up to a day of
lateness. Shorter, and the oldest baseline windows of long rules lose their buckets: they
count as empty (skipped) or, cut across, as a partial window with a wrong negative share."""
MAX_RETENTION_DAYS = 36_500
"""The longest retention (about 100 years): a cutoff that far back is still a date (a far longer
one, 1e6 days, fell before year 1 and made every retention run fail)."""


class AggregatorSettings(ServiceSettings):
    """Consumes ``text.scored``, writes trend buckets and scored events to PostgreSQL."""

    group_id: str = Field(
        validation_alias="TW_AGGREGATOR_GROUP_ID",
        default="tonewatch-aggregator",
        min_length=1,
        description="Consumer group (not empty).",
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
        le=MAX_RETENTION_DAYS,
        allow_inf_nan=False,
        description=(
            "Keep scored event text, and the alert explanations' quotes of it (by firing time), this long; "
            f"at most {MAX_RETENTION_DAYS:,} days."
        ),
    )
    ledger_retention_days: float = Field(
        validation_alias="TW_AGGREGATOR_LEDGER_RETENTION_DAYS",
        default=30.0,
        gt=0,
        le=MAX_RETENTION_DAYS,
        allow_inf_nan=False,
        description=(
            "Keep counted-event ids this long; replays older than this would recount. At least "
            "TW_AGGREGATOR_SCORED_RETENTION_DAYS: an event still stored would otherwise be counted again; "
            f"at most {MAX_RETENTION_DAYS:,} days."
        ),
    )
    trend_retention_days: float = Field(
        validation_alias="TW_AGGREGATOR_TREND_RETENTION_DAYS",
        default=0.0,
        ge=0,
        le=MAX_RETENTION_DAYS,
        allow_inf_nan=False,
        description=(
            "Keep trend buckets (trend_minute, trend_hour) this long before each stream's newest bucket in either "
            "table (or now, if that is earlier); events older than that are counted but not added to the buckets "
            "(logged as dropped too old, tonewatch_trend_events_too_old; a longer retention later cannot add them "
            "back: replays are deduplicated). 0 keeps them forever. Otherwise at least "
            f"{MIN_TREND_RETENTION_DAYS} days: the alerter's baselines read that far back (a 7-day rule window "
            f"and its {ALERTER_BASELINE_WINDOWS} baseline windows, up to a day of TW_ALERTER_MAX_STEPS and of "
            "TW_ALERTER_ALLOWED_LATENESS_S); raise it with TW_ALERTER_BASELINE_WINDOWS or TW_ALERTER_MAX_STEPS. "
            f"Trend queries and backtests find nothing older. At most {MAX_RETENTION_DAYS:,} days."
        ),
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

    @field_validator("trend_retention_days")
    @classmethod
    def _trend_retention_covers_the_baselines(cls, days: float) -> float:
        if 0 < days < MIN_TREND_RETENTION_DAYS:
            raise ValueError(
                f"TW_AGGREGATOR_TREND_RETENTION_DAYS ({days:g}) is shorter than {MIN_TREND_RETENTION_DAYS} days, "
                "how far back the alerter's baselines read (a 7-day rule window and its "
                f"{ALERTER_BASELINE_WINDOWS} baseline windows, a day of evaluation and a day of lateness): "
                f"set it to 0 (keep trend buckets forever) or at least {MIN_TREND_RETENTION_DAYS}"
            )
        return days

    @model_validator(mode="after")
    def _ledger_outlives_the_scored_events(self) -> AggregatorSettings:
        """The ledger (``counted_events``) is what keeps a replayed or redelivered event from
        being counted twice. Its row and the event's ``scored_events`` row are written in one
        transaction, and ``expire`` deletes each by its own retention: with the ledger's
        shorter, an event still stored (in the drill-down, quoted by alerts) loses its id
        first, and a replay of it is counted in the trend buckets again while its
        ``scored_events`` row stays as it was (``ON CONFLICT DO NOTHING``)."""
        if self.ledger_retention_days < self.scored_retention_days:
            raise ValueError(
                f"TW_AGGREGATOR_LEDGER_RETENTION_DAYS ({self.ledger_retention_days:g}) is shorter than "
                f"TW_AGGREGATOR_SCORED_RETENTION_DAYS ({self.scored_retention_days:g}): the ids of counted events "
                "would be deleted while the events are still stored, and a replay of them would be counted in "
                "the trends again; set TW_AGGREGATOR_LEDGER_RETENTION_DAYS to at least "
                "TW_AGGREGATOR_SCORED_RETENTION_DAYS"
            )
        return self
