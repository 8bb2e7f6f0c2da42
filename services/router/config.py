"""Router service settings."""

from __future__ import annotations

from pydantic import Field

from shared.config import ServiceSettings


class RouterSettings(ServiceSettings):
    """Consumes chat events from ``text.scored``, produces ``chat.queue.<queue>``."""

    group_id: str = Field(default="tonewatch-router", description="Consumer group.")
    max_batch: int = Field(default=500, ge=1, description="Most records per batch.")
    max_wait_ms: int = Field(default=100, ge=1, description="Longest wait to fill a batch.")
    confidence_threshold: float = Field(default=0.5, ge=0, le=1, description="Below this, route to human.")
    ambiguity_margin: float = Field(default=0.1, ge=0, le=1, description="Top two intents closer: route to human.")
    priority_negative_prob: float = Field(
        default=0.85, ge=0, le=1, description="Negative probability that flags priority and escalates."
    )
    routes_refresh_s: float = Field(default=15.0, gt=0, description="How often the routing table is reloaded.")
