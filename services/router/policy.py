"""Pure routing decision: intent verdict + sentiment -> work queue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.events import Score

HUMAN = "human"
ESCALATIONS = "escalations"

DEFAULT_ROUTES: Mapping[str, str] = {
    "card_lost_stolen": "cards",
    "card_declined": "cards",
    "card_activation": "cards",
    "pin_issue": "cards",
    "transfer_problem": "payments",
    "send_money": "payments",
    "refund_request": "disputes",
    "unrecognized_charge": "disputes",
    "login_problem": "access",
    "password_reset": "access",
    "balance_inquiry": "self_service",
    "statement_request": "self_service",
    "exchange_rate": "self_service",
    "greeting": "self_service",
    "fee_question": "billing",
    "loan_inquiry": "lending",
    "close_account": "retention",
    "update_details": "account",
    "complaint": "escalations",
    "human_agent": "human",
    "out_of_scope": "human",
}
QUEUES: tuple[str, ...] = tuple(sorted({*DEFAULT_ROUTES.values(), HUMAN, ESCALATIONS}))


@dataclass(frozen=True)
class RoutingPolicy:
    confidence_threshold: float = 0.5
    ambiguity_margin: float = 0.1
    priority_negative_prob: float = 0.8


@dataclass(frozen=True)
class Decision:
    queue: str
    priority: bool
    reason: str


def decide(intent: Score, sentiment: Score, routes: Mapping[str, str], policy: RoutingPolicy) -> Decision:
    ranked = sorted(intent.probs.items(), key=lambda kv: kv[1], reverse=True)
    top, p1 = ranked[0] if ranked else (intent.label, intent.confidence)
    p2 = ranked[1][1] if len(ranked) > 1 else 0.0
    priority = sentiment.probs.get("negative", 0.0) >= policy.priority_negative_prob
    if p1 < policy.confidence_threshold:
        return Decision(HUMAN, priority, f"low confidence: {top} {p1:.2f} < {policy.confidence_threshold:.2f}")
    # rounded: 0.6 - 0.5 is 0.09999999999999998 in floating point, and two scores exactly
    # the margin apart are not closer than it (0.55 - 0.45 came out 0.10000000000000003)
    if round(p1 - p2, 9) < policy.ambiguity_margin:
        return Decision(HUMAN, priority, f"ambiguous: {top} {p1:.2f} vs {ranked[1][0]} {p2:.2f}")
    queue = routes.get(top, HUMAN)
    if priority and queue != HUMAN:
        return Decision(ESCALATIONS, True, f"strongly negative ({sentiment.probs['negative']:.2f}); intent {top}")
    return Decision(queue, priority, f"intent {top} {p1:.2f}")
