"""Calm chats that review 22's wider cues escalated (score 1.0, the default threshold): a colon that
labels or quotes (C1), a greeting before a caps-lock theft report or a refund from someone else (C2),
a suit or a court case against someone other than the bank (C3), a disliked app feature asked about
and thanks for a favour (C4); each with the angry chats nearest to it, which must stay angry, more
realistic calm bank chats, and a linear-time check on 4,000 characters."""

from __future__ import annotations

import time

import pytest

from services.router.anger import SCAN_CHARS, anger
from services.router.policy import RoutingPolicy

THRESHOLD = RoutingPolicy().anger_score

CALM = [
    # C1: a colon labels or quotes what follows
    "Update: I HAVE FOUND MY CARD, you can unblock it.",
    "Question: CAN I OPEN AN ACCOUNT FOR MY DAUGHTER?",
    "Hi there. To confirm: YES I WANT TO CLOSE MY SAVINGS ACCOUNT. Thank you.",
    "The reference I used was: RENT FOR MY FLAT. Has it arrived?",
    "The text I got from you: YOUR CODE IS 443. Is this genuine?",
    "Note: I WILL BE AWAY FROM MY HOME UNTIL MAY, please don't send post.",
    "Update : I HAVE FOUND MY CARD",
    "Good morning, my bag was stolen yesterday: CAN YOU BLOCK MY CARDS",
    # C2: a greeting before a theft report, or a refund or funds from someone else
    "DEAR SIR MY CARD WAS STOLEN ON THE BUS TODAY",
    "HI I THINK SOMEONE STOLE MY CARD DETAILS",
    "HELLO WHERE IS MY REFUND FROM AMAZON IT SAYS 3-5 DAYS",
    "HELLO, WHERE ARE MY FUNDS FROM THE HOUSE SALE? MY SOLICITOR SENT THEM TODAY",
    # C3: a suit or a court case against someone else
    "I am suing my former landlord, can you provide statements as evidence?",
    "My ex is suing me for the house, can I get statements from 2019?",
    "We're going to sue our builder, can I stop the direct debit to him?",
    "I will be suing the airline for my cancelled flight, should I also do a chargeback?",
    "I have to take my son to court for a custody hearing on Friday",
    "My solicitor is taking the estate to court for probate",
    "We're suing the builder who took our deposit, do you need my statements?",
    "Our firm will be suing the contractor, not you, we need a bank reference letter.",
    "My brother is suing his employer and wants to borrow money from me, can I send £5000 today?",
    "My lawyer said we need to take the deeds to court for the probate hearing, do you need a copy?",
    # C4: a disliked app feature asked about; thanks for a favour
    "I hate this app's font size, how can I make it bigger?",
    "I hate the banking app update, where did the pots go? Otherwise love it.",
    "I hate the new app colour scheme lol, but how do I turn on dark mode?",
    "I hate the app's new layout a bit, where has the statements button gone?",
    "Thank you for ignoring my silly question earlier and just fixing it!",
    "Thank you for ignoring the late fee this time, that was kind.",
    "Thanks so much for wasting no time on my complaint, brilliant service.",
]

# Realistic calm chats near the same cues: none may reach the threshold.
MORE_CALM = [
    "Subject: MY NEW ADDRESS IS 4 HIGH STREET",
    "PS: I WILL BE IN SPAIN FROM MONDAY, don't block my card please",
    "Payment details: TO MY LANDLORD FOR JUNE",
    "Heads up: MY PHONE NUMBER HAS CHANGED, can you update it?",
    "Just to check: DO I NEED MY PASSPORT FOR THE BRANCH?",
    "My son's message said: MUM CAN YOU SEND ME £20. Is that a scam?",
    "FYI: MY WIFE WILL CALL ABOUT OUR JOINT ACCOUNT",
    "HELLO MY WALLET WAS STOLEN LAST NIGHT",
    "HI MY CAR WAS BROKEN INTO AND THEY STOLE MY BANK CARDS",
    "DEAR SIR I WAS ROBBED IN BARCELONA, I NEED AN EMERGENCY CARD",
    "HELLO SOMEONE HAS STOLEN MY IDENTITY AND OPENED A LOAN",
    "HI WHERE IS MY REFUND FROM EBAY",
    "HELLO WHERE IS MY MONEY FROM THE ESTATE AGENT",
    "HI WHERE IS MY NEW PIN",
    "My landlord is taking me to court over the deposit, can I get my statements?",
    "My daughter is suing her employer, can I lend her money from my ISA?",
    "The council are taking the neighbours to court, I need proof of address.",
    "I'm going to sue the garage that damaged my car, can I dispute the card payment?",
    "We are suing a tradesman, do you keep copies of cheques?",
    "I need to take my landlord to court, can you send six months of statements?",
    "I was a witness and had to go to court on Monday, sorry I missed your call.",
    "My employer is being sued, will my salary still go in?",
    "Sue from your branch said to message here about my mortgage.",
    "I hate the new login screen, how do I switch back to the fingerprint?",
    "I hate this app's notifications, how do I turn them off?",
    "I hate to ask but could I have a payment holiday?",
    "I hate your new logo, ha. Anyway, how do I order a cheque book?",
    "Thanks for waiving the overdraft fee, really appreciate it.",
    "Thank you for ignoring the typo in my form and processing it anyway, that was kind.",
    "Thanks for sorting my card so quickly!",
    "Thank you for stopping that payment, it was a scam and you caught it.",
    "Thanks for blocking the card quickly when it was stolen.",
    "Could you confirm the sort code for my ISA transfer?",
    "My salary hasn't arrived yet, is there a delay with payments today?",
    "I'd like to close my late husband's account, what do I need to send?",
]

ANGRY = [
    "As I said: I WANT MY MONEY BACK",
    "Listen: WHERE IS MY MONEY",
    "I repeat: WHERE IS MY MONEY",
    "Again: WHERE IS MY MONEY",
    "Once again : I WANT MY MONEY BACK",
    "DEAR SIR YOU HAVE STOLEN MY MONEY",
    "HI WHERE IS MY MONEY",
    "HELLO YOUR BANK HAS ROBBED ME",
    "HI YOU THIEVES GIVE ME MY MONEY",
    "See you in court",
    "I'm going to take the bank to court",
    "I'm going to sue the bank",
    "I will be suing the bank",
    "I will take you to court",
    "I will sue!",
    "I'm going to sue.",
    "I will sue if you do not refund me",
    "I will take this to court",
    "I will sue them",
    "I hate this bank",
    "I hate your app",
    "I hate your app, why does it never work?",
    "Thanks for wasting my time",
    "Thanks for ignoring me and not fixing anything",
    "THANK YOU FOR STEALING MY MONEY",
]


@pytest.mark.parametrize("text", CALM + MORE_CALM)
def test_a_calm_chat_stays_below_the_threshold(text: str) -> None:
    assert anger(text).score < THRESHOLD, (text, anger(text))


@pytest.mark.parametrize("text", ANGRY)
def test_its_angry_counterpart_still_reaches_it(text: str) -> None:
    assert anger(text).score >= THRESHOLD, (text, anger(text))


@pytest.mark.parametrize(
    ("text", "explained"),
    [
        ("I will be suing the bank", "'suing the bank'"),
        ("I'm going to take the bank to court", "'take the bank to court'"),
        ("I will sue!", "'sue'"),
        ("Listen: WHERE IS MY MONEY", "shouting (4 words in capitals)"),
    ],
)
def test_the_reason_names_the_cue(text: str, explained: str) -> None:
    assert anger(text).explain() == explained


@pytest.mark.parametrize(
    "seed",
    [
        "I hate this app's ",
        "Thanks for ignoring me ",
        "thanks for wasting ",
        "I am suing my ",
        "will sue ",
        "take my son ",
        "Update: ",
        "again : ",
        "HI SOMEONE STOLE MY ",
        "WHERE IS MY MONEY FROM ",
    ],
)
def test_the_narrowed_cues_stay_linear_on_a_long_chat(seed: str) -> None:
    for tail in ("", "?", " to court", " fixing", " AGAIN!!"):
        text = (seed * (SCAN_CHARS // len(seed) + 1))[: SCAN_CHARS - len(tail)] + tail
        anger(text)  # warm
        took = min(_timed(text) for _ in range(3))
        assert took < 0.05, (seed, tail, took)  # a few ms here; quadratic would be seconds


def _timed(text: str) -> float:
    start = time.perf_counter()
    anger(text)
    return time.perf_counter() - start
