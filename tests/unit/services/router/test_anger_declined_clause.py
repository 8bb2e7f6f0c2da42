"""A declined threat is excused only when the threat itself is declined: the window after
"without" / "not going/want/need to" stops at a new clause's subject ("without warning I
will sue you" threatens, as it does with a comma), and stays linear-time."""

from __future__ import annotations

import time

import pytest

from services.router.anger import anger

THREATS_AFTER_A_NEW_CLAUSE = [
    ("without warning I will sue you", "'sue you'"),
    ("If you close my account without warning I will sue you", "'sue you'"),
    ("I am not going to wait I will sue you", "'sue you'"),
    ("no need to wait I will report you to the FCA", "'report you to the fca'"),
    ("Take money from my account without permission I will report you to the FCA", "'report you to the fca'"),
    ("without warning you will hear from my lawyer", "'hear from my lawyer'"),
    ("without notice he will sue you", "'sue you'"),
    ("not going to wait we will take legal action", "'legal action'"),
]

STILL_DECLINED = [
    "I'm not going to take legal action",
    "resolved without going to the ombudsman",
    "I don't want to take legal action",
    "No need to contact the ombudsman",
    "Can we sort this out without legal action?",
    "without legal action",
    "I'm not trying to sue you",
    "I don't want to have to take you to court",
    "not looking to complain to the FCA",
    "no need for legal action",
]


@pytest.mark.parametrize(("text", "explained"), THREATS_AFTER_A_NEW_CLAUSE)
def test_a_threat_in_a_new_clause_is_not_declined(text: str, explained: str) -> None:
    a = anger(text)
    assert a.score >= 1.0
    assert a.explain() == explained
    with_comma = anger(text.replace(" I will", ", I will").replace(" you will", ", you will"))
    assert with_comma.score == a.score  # the comma no longer changes the result


@pytest.mark.parametrize("text", STILL_DECLINED)
def test_a_declined_threat_stays_excused(text: str) -> None:
    assert not anger(text).cues


@pytest.mark.parametrize(
    "text",
    [
        "without warning I will sue you " * 130,
        "no need to you will ombudsman " * 140,
        "not going to " + "i " * 1990 + "ombudsman",
        ("not going to wait i will " * 10 + "ombudsman ") * 15,
    ],
)
def test_declined_window_stays_fast_on_long_inputs(text: str) -> None:
    start = time.perf_counter()
    anger(text)
    assert time.perf_counter() - start < 0.25  # ~1 ms here; a generous bound for slow CI
