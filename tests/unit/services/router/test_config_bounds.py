"""Router settings that were accepted and silently broke routing (review 22, F7): an infinite
anger threshold switched anger detection off, a negative-probability threshold of 0 escalated
every chat, and a routing-table refresh of 1e-9 s reloaded the table in a busy loop (inf: never)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.router.config import MAX_ANGER_SCORE, MAX_ROUTES_REFRESH_S, MIN_ROUTES_REFRESH_S, RouterSettings


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", str(MAX_ANGER_SCORE + 0.5), "0"])
def test_an_anger_threshold_no_chat_can_reach_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TW_ROUTER_ANGER_SCORE", value)
    with pytest.raises(ValidationError, match="TW_ROUTER_ANGER_SCORE"):
        RouterSettings()


def test_the_highest_anger_threshold_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_ROUTER_ANGER_SCORE", str(MAX_ANGER_SCORE))
    assert RouterSettings().anger_score == MAX_ANGER_SCORE


@pytest.mark.parametrize("value", ["0", "0.0", "-0.1", "1.01", "nan"])
def test_a_negative_probability_threshold_every_chat_reaches_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TW_ROUTER_PRIORITY_NEGATIVE_PROB", value)
    with pytest.raises(ValidationError, match="TW_ROUTER_PRIORITY_NEGATIVE_PROB"):
        RouterSettings()


@pytest.mark.parametrize("value", ["0.01", "1"])
def test_a_negative_probability_threshold_above_zero_is_accepted(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TW_ROUTER_PRIORITY_NEGATIVE_PROB", value)
    assert RouterSettings().priority_negative_prob == float(value)


@pytest.mark.parametrize("value", ["inf", "nan", "1e-9", "0.001", str(MAX_ROUTES_REFRESH_S + 1)])
def test_a_routes_refresh_that_spins_or_never_comes_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TW_ROUTER_ROUTES_REFRESH_S", value)
    with pytest.raises(ValidationError, match="TW_ROUTER_ROUTES_REFRESH_S"):
        RouterSettings()


@pytest.mark.parametrize("value", [MIN_ROUTES_REFRESH_S, 15.0, MAX_ROUTES_REFRESH_S])
def test_a_routes_refresh_within_bounds_is_accepted(monkeypatch: pytest.MonkeyPatch, value: float) -> None:
    monkeypatch.setenv("TW_ROUTER_ROUTES_REFRESH_S", str(value))
    assert RouterSettings().routes_refresh_s == value


def test_a_refused_setting_is_reported_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_ROUTER_ANGER_SCORE", "inf")
    with pytest.raises(ValidationError) as info:
        RouterSettings()
    [error] = info.value.errors()
    assert "\n" not in error["msg"], error["msg"]
