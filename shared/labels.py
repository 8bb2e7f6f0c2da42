"""Fixed label sets. The router and the alert logic key on these names."""

from typing import Final, Literal

Task = Literal["sentiment", "intent"]
TASKS: Final[tuple[Task, ...]] = ("sentiment", "intent")

SENTIMENT_LABELS: Final[tuple[str, ...]] = ("negative", "neutral", "positive")

INTENT_LABELS: Final[tuple[str, ...]] = (
    "card_lost_stolen",
    "card_declined",
    "card_activation",
    "pin_issue",
    "transfer_problem",
    "send_money",
    "refund_request",
    "unrecognized_charge",
    "login_problem",
    "password_reset",
    "balance_inquiry",
    "statement_request",
    "fee_question",
    "loan_inquiry",
    "close_account",
    "update_details",
    "exchange_rate",
    "complaint",
    "human_agent",
    "greeting",
    "out_of_scope",
)

LABELS: Final[dict[str, tuple[str, ...]]] = {
    "sentiment": SENTIMENT_LABELS,
    "intent": INTENT_LABELS,
}
