"""Pure routing decision: intent verdict + sentiment + the chat's own text -> work queue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.router.anger import anger, has_letters
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
# The most decimals a reason rounds to; closer numbers are shown in full.
_PLACES_MAX = 6
QUEUES: tuple[str, ...] = tuple(sorted({*DEFAULT_ROUTES.values(), HUMAN, ESCALATIONS}))


@dataclass(frozen=True)
class RoutingPolicy:
    confidence_threshold: float = 0.5
    ambiguity_margin: float = 0.1
    priority_negative_prob: float = 0.8
    anger_score: float = 1.0


@dataclass(frozen=True)
class Decision:
    queue: str
    priority: bool
    reason: str


def decide(
    intent: Score, sentiment: Score, routes: Mapping[str, str], policy: RoutingPolicy, text: str | None = None
) -> Decision:
    """Route on the scores, and on ``text`` (the chat as scored) when given: an angry chat
    (:mod:`services.router.anger`) is treated as a strongly negative one, and a text with no
    letters goes to human, or to escalations when its cues are angry ("😡😡😡")."""
    if text is not None and not has_letters(text):
        return _no_words(text, policy)
    ranked = sorted(intent.probs.items(), key=lambda kv: kv[1], reverse=True)
    top, p1 = ranked[0] if ranked else (intent.label, intent.confidence)
    p2 = ranked[1][1] if len(ranked) > 1 else 0.0
    why = _why_priority(sentiment, text, policy)
    priority = bool(why)
    if p1 < policy.confidence_threshold:
        return Decision(HUMAN, priority, _and(f"low confidence: {top} {_below(p1, policy.confidence_threshold)}", why))
    # rounded: 0.6 - 0.5 is 0.09999999999999998 in floating point, and two scores exactly
    # the margin apart are not closer than it (0.55 - 0.45 came out 0.10000000000000003)
    if round(p1 - p2, 9) < policy.ambiguity_margin:
        return Decision(HUMAN, priority, _and(f"ambiguous: {top} {p1:.2f} vs {ranked[1][0]} {p2:.2f}", why))
    queue = routes.get(top, HUMAN)
    if priority and queue != HUMAN:
        return Decision(ESCALATIONS, True, f"{'; '.join(why)}; intent {top}")
    return Decision(queue, priority, _and(f"intent {top} {p1:.2f}", why))


def _why_priority(sentiment: Score, text: str | None, policy: RoutingPolicy) -> list[str]:
    why: list[str] = []
    if text is not None and (a := anger(text)).score >= policy.anger_score:
        why.append(f"angry: {a.explain()}")
    negative = sentiment.probs.get("negative", 0.0)
    if negative >= policy.priority_negative_prob:
        why.append(f"strongly negative ({negative:.2f})")
    return why


def _no_words(text: str, policy: RoutingPolicy) -> Decision:
    """The models read such a text as unknown tokens: their scores say nothing, its cues may."""
    a = anger(text)
    if a.score >= policy.anger_score:
        return Decision(ESCALATIONS, True, f"angry: {a.explain()}; no words to classify")
    return Decision(HUMAN, False, "no words to classify")


def _below(score: float, threshold: float) -> str:
    """ "0.40 < 0.50", with more decimals where two places would print the same number on both
    sides ("0.4996 < 0.5000", not "0.50 < 0.50"); closer still, each number in full."""
    for places in range(2, _PLACES_MAX + 1):
        if (shown := f"{score:.{places}f}") != (limit := f"{threshold:.{places}f}"):
            return f"{shown} < {limit}"
    return f"{score!r} < {threshold!r}"


def _and(reason: str, why: list[str]) -> str:
    return "; ".join([reason, *why])
