"""The anger signal's gaps: "bs" (bullshit) as profanity, but not inside a word nor "BS" as a
British Standard, a postcode, a degree or a building society; and a question whether one must
go to the ombudsman within a time limit (the complaint procedure's "your final response") asks
about the process, it threatens no one."""

from __future__ import annotations

import pytest

from services.router.anger import anger
from services.router.policy import RoutingPolicy

THRESHOLD = RoutingPolicy().anger_score

ANGRY = [
    "This is bs, I never authorised that payment and you're telling me I'm liable??",
    "what a load of bs, just refund me",
    "Total BS. I paid on time and you still charged me a late fee",
    "this is such bs you froze my account for no reason",
    "BS! I never got a text about this",
    "Bs excuse, the payment left my account 3 days ago",
    "that's BS and you know it",
    "£35 fee for a 40p overdraft? bs",
    "Do I have to go to the ombudsman to get my money back?",
    "Do I need to escalate this to the ombudsman or will you actually fix it?",
    "Do I have to go to the ombudsman within 8 weeks or will you refund me?",
]
CALM = [
    "I've applied for three jobs and need a reference letter for my mortgage",
    "My new address is 12 Park Row, Bristol BS1 5LS",
    "The postcode is BS 8 1TH, can you update it?",
    "I have a BSc in accounting, do I qualify for the graduate account?",
    "I have a BS in Finance from a US university",
    "The electrician says the socket meets BS 7671",
    "I moved my savings to Nationwide BS last year",
    "The subs and jobs payments went out twice??",
    "Is my card still blocked??",
    "Do I need to contact the ombudsman within six months of your final response?",
    "Do I have to go to the ombudsman within 8 weeks of my complaint?",
    "Can I complain to the ombudsman within six months of your final response?",
    "Do I need to contact the ombudsman before I get your final response?",
    "Do I need to go to the ombudsman within 6 months of the deadlock letter?",
]


def flagged(text: str) -> bool:
    return anger(text).score >= THRESHOLD


@pytest.mark.parametrize("text", ANGRY)
def test_an_angry_chat_is_flagged(text: str) -> None:
    assert flagged(text), (text, anger(text))


@pytest.mark.parametrize("text", CALM)
def test_a_calm_look_alike_is_not_flagged(text: str) -> None:
    assert not flagged(text), (text, anger(text))


def test_bs_is_named_as_the_cue() -> None:
    assert anger("This is bs, I never authorised that payment and you're telling me I'm liable??").explain() == "'bs'"
    assert anger("Total BS. I paid on time").explain() == "'bs'"
    assert not anger("Do I need to contact the ombudsman within six months of your final response?").cues
