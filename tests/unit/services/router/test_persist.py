"""What the router sends for a batch, given its ledger (pure: no database)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.router.persist import Recorded, to_send
from shared.events import RoutedChat

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def chat(
    mid: str, queue: str = "access", priority: bool = False, reason: str = "intent login_problem 0.95"
) -> RoutedChat:
    return RoutedChat(
        id=mid,
        conversation_id=f"c-{mid}",
        event_time=T0,
        queue=queue,
        intent="login_problem",
        confidence=0.95,
        priority=priority,
        reason=reason,
        text="I cannot log in",
        sentiment="neutral",
    )


def test_a_new_chat_is_sent_as_decided() -> None:
    assert to_send([chat("a")], {"a": Recorded("access", False, "intent login_problem 0.95", sent=False)}) == [
        chat("a")
    ]


def test_a_chat_recorded_but_not_sent_goes_to_the_recorded_queue_with_the_recorded_decision() -> None:
    """Routed to cards before a crash; the table now says access and the chat is negative."""
    ledger = {"a": Recorded("cards", False, "intent card_declined 0.95", sent=False)}
    sent = to_send([chat("a", queue="escalations", priority=True, reason="strongly negative")], ledger)
    assert [(r.id, r.queue, r.priority, r.reason) for r in sent] == [("a", "cards", False, "intent card_declined 0.95")]
    assert sent[0].text == "I cannot log in"  # the rest from the event


def test_a_chat_sent_before_or_missing_from_the_ledger_is_not_sent() -> None:
    ledger = {"a": Recorded("cards", None, None, sent=True), "b": Recorded("cards", True, "x", sent=True)}
    assert to_send([chat("a"), chat("b"), chat("c")], ledger) == []


def test_each_id_is_sent_once_in_batch_order() -> None:
    ledger = {m: Recorded("access", False, "intent login_problem 0.95", sent=False) for m in "abc"}
    sent = to_send([chat("c"), chat("a"), chat("c", queue="other"), chat("b")], ledger)
    assert [(r.id, r.queue) for r in sent] == [("c", "access"), ("a", "access"), ("b", "access")]
