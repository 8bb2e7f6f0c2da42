from __future__ import annotations

from services.router.policy import DEFAULT_ROUTES, ESCALATIONS, HUMAN, QUEUES, RoutingPolicy, decide
from shared.events import Score
from shared.labels import INTENT_LABELS

P = RoutingPolicy(confidence_threshold=0.5, ambiguity_margin=0.1, priority_negative_prob=0.85)


def intent(**probs: float) -> Score:
    top = max(probs, key=probs.__getitem__)
    return Score(label=top, confidence=probs[top], probs=probs, model="i", version="1")


def sentiment(neg: float) -> Score:
    return Score(
        label="negative" if neg > 0.5 else "neutral",
        confidence=max(neg, 1 - neg),
        probs={"negative": neg, "neutral": 1 - neg, "positive": 0.0},
        model="s",
        version="1",
    )


def test_every_intent_has_a_default_queue() -> None:
    assert set(DEFAULT_ROUTES) == set(INTENT_LABELS)
    assert {
        "cards",
        "payments",
        "disputes",
        "access",
        "self_service",
        "billing",
        "lending",
        "retention",
        "account",
        "escalations",
        "human",
    } <= set(QUEUES)


def test_confident_intent_goes_to_its_queue() -> None:
    d = decide(intent(card_lost_stolen=0.9, pin_issue=0.05), sentiment(0.1), DEFAULT_ROUTES, P)
    assert (d.queue, d.priority) == ("cards", False)


def test_low_confidence_goes_to_human() -> None:
    d = decide(intent(card_declined=0.4, pin_issue=0.1), sentiment(0.1), DEFAULT_ROUTES, P)
    assert d.queue == HUMAN and "low confidence" in d.reason


def test_ambiguous_goes_to_human() -> None:
    d = decide(intent(login_problem=0.52, password_reset=0.46), sentiment(0.1), DEFAULT_ROUTES, P)
    assert d.queue == HUMAN and "ambiguous" in d.reason


def test_strongly_negative_is_escalated_with_priority() -> None:
    d = decide(intent(fee_question=0.95), sentiment(0.93), DEFAULT_ROUTES, P)
    assert (d.queue, d.priority) == (ESCALATIONS, True)


def test_unknown_intent_goes_to_human() -> None:
    d = decide(intent(brand_new_intent=0.99), sentiment(0.0), DEFAULT_ROUTES, P)
    assert d.queue == HUMAN


def test_scores_exactly_the_margin_apart_are_not_ambiguous_whatever_their_floating_point_difference() -> None:
    """'closer than the margin': 0.60/0.50 (difference 0.0999...98 in floating point) and
    0.55/0.45 (0.1000...03) are both exactly 0.1 apart and route the same way."""
    for p1, p2 in ((0.6, 0.5), (0.7, 0.6), (0.65, 0.55), (0.9, 0.8), (0.55, 0.45), (0.8, 0.7)):
        d = decide(intent(card_declined=p1, pin_issue=p2), sentiment(0.1), DEFAULT_ROUTES, P)
        assert d.queue == "cards", (p1, p2, d.reason)
    d = decide(intent(card_declined=0.6, pin_issue=0.500001), sentiment(0.1), DEFAULT_ROUTES, P)
    assert d.queue == HUMAN and "ambiguous" in d.reason


def test_a_strongly_negative_chat_for_human_stays_with_human_with_priority() -> None:
    d = decide(intent(card_declined=0.4, pin_issue=0.1), sentiment(0.93), DEFAULT_ROUTES, P)
    assert (d.queue, d.priority) == (HUMAN, True)


def test_an_angry_chat_the_sentiment_model_reads_as_neutral_is_escalated_with_priority() -> None:
    """The sentiment model (2020 headlines) gave these 0.12, 0.13 and 0.70 negative: they
    went to retention, disputes and cards without priority."""
    cases = [
        ("I want to close my account, you are useless and I am furious", "close_account", 0.12, "'useless', 'furious'"),
        ("You people are thieves. Refund me now or I'm going to the ombudsman", "refund_request", 0.13, "'thieves'"),
        ("my card was declined AGAIN, this is a disgrace, I am absolutely livid", "card_declined", 0.70, "'livid'"),
    ]
    for text, label, neg, cue in cases:
        d = decide(intent(**{label: 0.95}), sentiment(neg), DEFAULT_ROUTES, P, text)
        assert (d.queue, d.priority) == (ESCALATIONS, True), (text, d)
        assert d.reason.startswith("angry: ") and cue in d.reason and d.reason.endswith(f"; intent {label}")
        assert text not in d.reason


def test_a_calm_chat_with_text_routes_as_before() -> None:
    d = decide(intent(card_lost_stolen=0.95), sentiment(0.6), DEFAULT_ROUTES, P, "my card was stolen yesterday")
    assert d == decide(intent(card_lost_stolen=0.95), sentiment(0.6), DEFAULT_ROUTES, P)
    assert (d.queue, d.priority, d.reason) == ("cards", False, "intent card_lost_stolen 0.95")


def test_angry_and_strongly_negative_both_say_why() -> None:
    d = decide(intent(fee_question=0.95), sentiment(0.93), DEFAULT_ROUTES, P, "this fee is outrageous")
    assert (d.queue, d.priority) == (ESCALATIONS, True)
    assert d.reason == "angry: 'outrageous'; strongly negative (0.93); intent fee_question"


def test_an_angry_chat_for_human_stays_with_human_with_priority_and_says_why() -> None:
    d = decide(intent(card_declined=0.4, pin_issue=0.1), sentiment(0.1), DEFAULT_ROUTES, P, "FIX THIS NOW")
    assert (d.queue, d.priority) == (HUMAN, True)
    assert d.reason == "low confidence: card_declined 0.40 < 0.50; angry: shouting (3 words in capitals)"


def test_the_anger_threshold_is_the_policys() -> None:
    strict = RoutingPolicy(0.5, 0.1, 0.85, anger_score=2.0)
    text = "That's a disgrace, I want the fee refunded"
    assert decide(intent(refund_request=0.95), sentiment(0.1), DEFAULT_ROUTES, P, text).queue == ESCALATIONS
    assert decide(intent(refund_request=0.95), sentiment(0.1), DEFAULT_ROUTES, strict, text).queue == "disputes"


def test_a_text_with_no_letters_goes_to_human_whatever_the_models_made_of_it() -> None:
    """The models read "👍👍" as [CLS] [UNK] [SEP]: its confident greeting went to self_service."""
    for text in ("👍👍", "???", "12345", "🙂 !", ""):
        for neg in (0.1, 0.95):
            d = decide(intent(greeting=0.97), sentiment(neg), DEFAULT_ROUTES, P, text)
            assert (d.queue, d.priority, d.reason) == (HUMAN, False, "no words to classify"), (text, neg)


def test_angry_emoji_alone_go_to_escalations_with_priority() -> None:
    d = decide(intent(greeting=0.97), sentiment(0.1), DEFAULT_ROUTES, P, "😡😡😡")
    assert (d.queue, d.priority, d.reason) == (ESCALATIONS, True, "angry: '😡'; no words to classify")


def test_calm_chats_the_review_found_escalated_go_to_their_intents_queue() -> None:
    """Each went to escalations with priority on a cue that was no anger ('thieves',
    shouting, 'my solicitor will', 'j***', 'DHL' and '!!'); the sworn one went to payments."""
    cases = [
        ("Thieves stole my card last night, please block it", "card_lost_stolen", "cards"),
        ("The terminal said DO NOT HONOR", "card_declined", "cards"),
        ("It says INVALID PIN TRY AGAIN", "pin_issue", "cards"),
        ("My solicitor will need a statement for probate", "statement_request", "self_service"),
        ("We sent a code to j***@gmail.com but I never got it", "login_problem", "access"),
        ("Thank you so much!! The card from DHL arrived", "greeting", "self_service"),
    ]
    for text, label, queue in cases:
        d = decide(intent(**{label: 0.9, "x": 0.1}), sentiment(0.2), DEFAULT_ROUTES, P, text)
        assert (d.queue, d.priority, d.reason) == (queue, False, f"intent {label} 0.90"), (text, d)
    d = decide(
        intent(transfer_problem=0.9, x=0.1), sentiment(0.2), DEFAULT_ROUTES, P, "No fucking way, where is my money"
    )
    assert (d.queue, d.priority, d.reason) == (ESCALATIONS, True, "angry: 'fucking'; intent transfer_problem")
