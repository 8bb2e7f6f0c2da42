"""A low-confidence reason printed "card_declined 0.50 < 0.50" for 0.4996 (review 22, F8): the two
numbers now differ as they do, with two decimals where those tell them apart."""

from __future__ import annotations

import pytest

from services.router.policy import DEFAULT_ROUTES, HUMAN, RoutingPolicy, decide
from shared.events import Score

SENTIMENT = Score(
    label="neutral", confidence=0.9, probs={"negative": 0.05, "neutral": 0.9, "positive": 0.05}, model="s", version="1"
)


def _low(p: float, threshold: float = 0.5) -> str:
    intent = Score(
        label="card_declined", confidence=p, probs={"card_declined": p, "pin_issue": 0.0}, model="i", version="1"
    )
    d = decide(intent, SENTIMENT, DEFAULT_ROUTES, RoutingPolicy(confidence_threshold=threshold))
    assert d.queue == HUMAN
    return d.reason


@pytest.mark.parametrize(
    ("p", "threshold", "reason"),
    [
        (0.4996, 0.5, "low confidence: card_declined 0.4996 < 0.5000"),
        (0.499, 0.5, "low confidence: card_declined 0.499 < 0.500"),
        (0.49999999999, 0.5, "low confidence: card_declined 0.49999999999 < 0.5"),
        (0.4, 0.5, "low confidence: card_declined 0.40 < 0.50"),  # two decimals tell them apart
        (0.7, 0.75, "low confidence: card_declined 0.70 < 0.75"),
    ],
)
def test_a_low_confidence_reason_shows_the_score_below_the_threshold(p: float, threshold: float, reason: str) -> None:
    assert _low(p, threshold) == reason
