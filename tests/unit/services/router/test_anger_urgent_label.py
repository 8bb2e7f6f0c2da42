"""A label the customer puts before their own words ("URGENT:", "IMPORTANT:", "Complaint:") does not
make the shouting after it a quotation: "URGENT: I WANT MY MONEY BACK NOW" scored 0. What follows a
quoting word or another label stays quoted."""

from __future__ import annotations

import pytest

from services.router.anger import anger
from services.router.policy import RoutingPolicy

THRESHOLD = RoutingPolicy().anger_score

ANGRY = [
    "URGENT: I WANT MY MONEY BACK NOW",
    "Urgent: WHERE IS MY MONEY",
    "IMPORTANT: YOU HAVE STOLEN MY MONEY",
    "Attention: I WANT MY MONEY BACK",
    "Complaint: WHERE IS MY REFUND",
]

CALM = [
    "the letter said: YOU OWE US MONEY",
    "The error says: ACCOUNT LOCKED",
    "Update: I HAVE FOUND MY CARD, you can unblock it.",
    "To confirm: YES I WANT TO CLOSE MY ACCOUNT",
    "Warning: YOUR ACCOUNT IS LOCKED is what the app shows",
    "Reference: MY MONEY BACK 2021",
    "urgent question: can I raise my card limit?",
]


@pytest.mark.parametrize("text", ANGRY)
def test_shouting_after_a_label_of_ones_own_is_anger(text: str) -> None:
    assert anger(text).score >= THRESHOLD, anger(text)


@pytest.mark.parametrize("text", CALM)
def test_quoted_or_labelled_capitals_stay_calm(text: str) -> None:
    assert anger(text).score < THRESHOLD, anger(text)
