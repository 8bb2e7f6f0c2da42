"""Angry chats that scored 0 (review 22): a rhetorical question or a declined threat taken up after
"but" read as a negation (F1), a greeting or a bare colon excusing a shouted accusation (F2),
sarcastic thanks (F3), abuse said of you ("you're idiots", F4), threats of court and suing (F5),
profanity spelt with signs, misspelt or stretched, and "I hate this bank" (F6); each with the
calm chats nearest to it, which must stay calm, and a linear-time check on 4,000 characters."""

from __future__ import annotations

import time

import pytest

from services.router.anger import SCAN_CHARS, anger
from services.router.policy import RoutingPolicy

THRESHOLD = RoutingPolicy().anger_score

ANGRY = [
    # F1: a negation in a rhetorical question asks for agreement; a declined threat taken up
    "Is this not a disgrace?",
    "Is it not ridiculous that I have waited 3 weeks for my refund?",
    "Who wouldn't be furious?",
    "How is this not a disgrace?",
    "Why would anyone not be furious?",
    "I never wanted to sue you but here we are",
    "I don't want to take legal action but you leave me no choice",
    # F2: a greeting opens an accusation, and a colon quotes only after a quoting word
    "HI WHERE IS MY MONEY",
    "DEAR SIR YOU HAVE STOLEN MY MONEY",
    "HELLO WHERE HAS MY MONEY GONE",
    "As I said: I WANT MY MONEY BACK",
    "Listen: WHERE IS MY MONEY",
    # F3: sarcastic thanks
    "Thanks for blocking my card AGAIN!!",
    "Thank you so much for declining my payment AGAIN!!",
    "THANK YOU FOR STEALING MY MONEY",
    "thanks for wasting my time",
    "Thanks for completely ignoring me",
    # F4: abuse said of you
    "you're idiots",
    "you people are idiots",
    "you are all idiots",
    "You lot are morons",
    # F5: threats of court and of suing
    "I'm going to take the bank to court",
    "I will take your company to court",
    "I'll see you in court",
    "See you in court",
    "I'm going to sue the bank",
    "I will be suing the bank",
    "I will sue",
    "I'm suing",
    # F6: profanity spelt with a sign, a digit or a misspelling; hatred of the bank; stretched words
    "f@ck this",
    "Your app is sh!t",
    "sh1t service",
    "fcuk you",
    "fck this bank",
    "fkn idiots",
    "I hate this bank",
    "I hate you",
    "I hate your app",
    "I'm angryyy",
    "furiousss",
    "absolutely uselesssss",
    "fuuuuck",
]

CALM = [
    # F1
    "Is this not the right queue?",
    "I'm not angry, is that ok?",
    "I'm not angry. Is that a problem?",
    "Is it not possible to get a refund?",
    "Do I not need a PIN for this?",
    "Do you not think I'm not angry?",
    "I don't want to take legal action but please refund me",
    "I'm not going to sue",
    "I will not sue you",
    # F2
    "HI CAN YOU HELP ME",
    "HI WHERE IS MY NEW CARD",
    "HELLO I WANT TO SEND MONEY TO MY SON",
    "HI CAN YOU TELL ME WHERE MY REFUND IS",
    "HI WHERE IS MY REFUND PLEASE",
    "The error says: ACCOUNT LOCKED YOUR CARD",
    "The error says: ACCOUNT LOCKED",
    "I got a text: YOUR CARD HAS BEEN BLOCKED",
    "Reason: YOUR ACCOUNT IS FROZEN",
    # F3
    "Thanks for sorting my card so quickly!!",
    "Thanks for blocking my card!!",
    "Thanks for your help AGAIN!!",
    "Thank you for not ignoring me",
    # F4
    "you're not idiots",
    "my neighbours are idiots, they parked on my drive",
    # F5
    "the court case on the news",
    "I went to court for my divorce",
    "I'm going to court for jury duty",
    "Sue said you would call",
    "Please ask Sue to call me back",
    "I'm going to Sue's house",
    # F6
    "I hate to bother you",
    "I hate the people who stole my card",
    "email me at jo@bt.com",
    "Hello!This is great",
    "soooo good, thanks",
    "cooool",
    "Zzzz",
]


@pytest.mark.parametrize("text", ANGRY)
def test_an_angry_chat_reaches_the_threshold(text: str) -> None:
    assert anger(text).score >= THRESHOLD, (text, anger(text))


@pytest.mark.parametrize("text", CALM)
def test_its_calm_counterpart_stays_calm(text: str) -> None:
    assert anger(text).score < THRESHOLD, (text, anger(text))


@pytest.mark.parametrize(
    ("text", "explained"),
    [
        ("I never wanted to sue you but here we are", "'sue you'"),
        ("I'll see you in court", "'see you in court'"),
        ("I will sue", "'sue'"),
        ("I'm angryyy", "'angry'"),
        ("Your app is sh!t", "'sh!t'"),
        ("THANK YOU FOR STEALING MY MONEY", "'thank you for stealing'"),
        ("Thanks for blocking my card AGAIN!!", "'AGAIN', '!!'"),
        ("HI WHERE IS MY MONEY", "shouting (5 words in capitals)"),
    ],
)
def test_the_reason_names_the_cue(text: str, explained: str) -> None:
    assert anger(text).explain() == explained


def test_a_stretched_or_spelt_cue_after_a_negation_is_still_negated() -> None:
    assert not anger("I'm not angryyy").cues
    assert anger("no fcuking way").cues  # profanity is never negated


@pytest.mark.parametrize(
    "seed",
    [
        "I never wanted to sue you ",
        "Is this not a disgrace ",
        "Thanks for blocking ",
        "a@b!c1d0e$",
        "angryyy ",
        "HI WHERE MY ",
        "take the bank ",
        "will sue ",
        "said: ",
    ],
)
def test_the_new_cues_stay_linear_on_a_long_chat(seed: str) -> None:
    for tail in ("", "?", " to court", " AGAIN!!"):
        text = (seed * (SCAN_CHARS // len(seed) + 1))[: SCAN_CHARS - len(tail)] + tail
        anger(text)  # warm
        took = min(_timed(text) for _ in range(3))
        assert took < 0.05, (seed, tail, took)  # ~3 ms here; quadratic would be seconds


def _timed(text: str) -> float:
    start = time.perf_counter()
    anger(text)
    return time.perf_counter() - start
