"""Everyday "BS" that is no profanity: a building society ("Nationwide BS", "Yorkshire BS?"), one asked
about ("Do you accept payments from a BS?", "What is BS?"), its number or sort code ("my bs number"),
an advert's "no BS". It scored 1.0 (a "?" or "!" after "BS" was read as a verdict, "no" was a verdict,
a lower-case "bs" was always strong), the default threshold: the chat went to escalations with
priority. Now "BS" counts after a verdict, alone as a clause ("BS!", "... overdraft? bs") or, in lower
case, on what was said ("Bs excuse"); never after a capitalised word nor before number/no/code/sort/
account/reference; a lower-case "bs" with none of these is weak (0.5)."""

from __future__ import annotations

import pytest

from services.router.anger import STRONG, WEAK, anger
from services.router.policy import RoutingPolicy

THRESHOLD = RoutingPolicy().anger_score

REVIEWED_CALM = [
    "Can I transfer the money to my Nationwide BS?",
    "Is my account with Yorkshire BS?",
    "Do you accept payments from a BS?",
    "What is BS?",
    "Where do I enter my bs number?",
    "no BS pricing please, thanks",
]
LOOKALIKES_CALM = [
    "Please send it to Coventry BS!",
    "I have a mortgage with Skipton BS, can I pay it from here?",
    "The payee is Nationwide BS.",
    "Payment to NATIONWIDE BS failed",
    "Transfer £200 to Leeds BS please!",
    "What's BS?",
    "what's bs",
    "What BS?",
    "What does BS stand for on my statement?",
    "Please quote your BS reference",
    "BS No. 12345 is my roll number",
    "what is my bs sort code?",
    "Is the bs code the same as the sort code?",
    "I'd like a no-BS answer please",
    "Is that a BS?",
    "Can I pay into a BS account from abroad?",
    "What is BS 7671?",
]
ANGRY = [
    "This is bs, I never authorised that payment and you're telling me I'm liable??",
    "BS! I never got a text about this",
    "Total BS. I paid on time and you still charged me a late fee",
    "£35 fee for a 40p overdraft? bs",
    "Bs excuse, the payment left my account 3 days ago",
    "Utter BS!",
    "THIS IS BS",
    "this whole thing is bs",
    "What bs!",
    "you charged me twice, bs!",
    "this is bs no one told me",
    "what a bs answer",
]


@pytest.mark.parametrize("text", REVIEWED_CALM + LOOKALIKES_CALM)
def test_an_everyday_bs_is_not_flagged(text: str) -> None:
    a = anger(text)
    assert a.score < THRESHOLD, (text, a)


@pytest.mark.parametrize("text", REVIEWED_CALM)
def test_the_reviewed_cases_have_no_bs_cue_at_all(text: str) -> None:
    assert "'bs'" not in [c.label for c in anger(text).cues], (text, anger(text))


@pytest.mark.parametrize("text", ANGRY)
def test_bs_as_a_verdict_is_strong(text: str) -> None:
    a = anger(text)
    assert [(c.label, c.weight) for c in a.cues if c.label == "'bs'"] == [("'bs'", STRONG)], (text, a)
    assert a.score >= THRESHOLD


@pytest.mark.parametrize(
    "text", ["they sent me bs about my payment", "the payment went to principality bs?", "i got a bs letter"]
)
def test_a_lower_case_bs_without_a_verdict_is_weak(text: str) -> None:
    a = anger(text)
    assert [(c.label, c.weight) for c in a.cues] == [("'bs'", WEAK)], (text, a)
    assert a.score < THRESHOLD


def test_a_weak_bs_with_another_weak_cue_is_flagged() -> None:
    a = anger("they keep sending me bs about fees, terrible service")
    assert a.score >= THRESHOLD, a
