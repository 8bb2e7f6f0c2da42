"""A rule lists each channel once; a scope naming what the watchlist lacks gets warnings;
the webhook idempotency key is derived, not random (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from tw_testing import rule_spec

from services.alerter.deliver import PERMANENT_STATUSES, idempotency_key, payload
from services.alerter.rules import RuleSpec, Scope, scope_warnings
from shared.events import AlertEvent

AT = datetime(2031, 3, 9, 14, 30, tzinfo=UTC)
SLACK = "https://hooks.slack.com/services/T000/B000/secretpart"


def spec(channels: list[dict[str, Any]]) -> RuleSpec:
    rule: RuleSpec = rule_spec(channels)
    return rule


@pytest.mark.parametrize(
    "second",
    [
        {"url": SLACK},  # the same, format json by default on both
        {"url": SLACK, "format": "json"},
        {"url": SLACK.replace("hooks.slack.com", "HOOKS.Slack.com")},  # one URL, spelt otherwise
    ],
)
def test_a_channel_listed_twice_is_refused_naming_it_masked(second: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        spec([{"url": SLACK}, {"url": "https://example.com/other"}, second])
    (error,) = info.value.errors()
    assert error["loc"] == ("channels",)
    assert "channel 2 repeats channel 0" in error["msg"] and "list a channel once" in error["msg"]
    assert "secretpart" not in error["msg"] and "hooks.slack.com/" in error["msg"]  # the URL is a credential


def test_one_url_in_two_formats_or_two_urls_are_distinct_channels() -> None:
    rule = spec([{"url": SLACK}, {"url": SLACK, "format": "slack"}, {"url": "https://example.com/x"}])
    assert len(rule.channels) == 3


GROUPS = {"ACME": "Banks", "Acme": None, "GLOBEX": "Energy", "_all": None}


def test_scope_entities_off_the_watchlist_are_named_with_their_watchlist_spelling() -> None:
    warnings = scope_warnings(Scope(entities=["acme", "GLOBEX", "_all", "INITECH"]), GROUPS)
    assert len(warnings) == 2
    assert warnings[0].startswith("scope entity 'acme' is not on the watchlist; did you mean 'ACME' or 'Acme'?")
    assert warnings[1].startswith("scope entity 'INITECH' is not on the watchlist (")
    assert "did you mean" not in warnings[1]


def test_a_scope_group_no_entity_has_is_named_with_its_spelling() -> None:
    (warning,) = scope_warnings({"group": "banks"}, GROUPS)
    assert warning.startswith("scope group 'banks' is not the group of any entity on the watchlist")
    assert "did you mean 'Banks'?" in warning
    (warning,) = scope_warnings({"group": "Retail"}, GROUPS)
    assert "did you mean" not in warning


@pytest.mark.parametrize(
    "scope",
    [Scope(entities=["ACME", "_all"]), Scope(group="Banks"), Scope(all_entities=True), Scope(entities=["_all"])],
)
def test_a_scope_the_watchlist_has_gets_no_warning(scope: Scope) -> None:
    assert scope_warnings(scope, GROUPS) == []
    assert scope_warnings(scope.model_dump(), GROUPS) == []  # a stored rule's scope, as a dict


def test_even_an_empty_watchlist_has_all() -> None:
    assert scope_warnings(Scope(entities=["_all"]), {}) == []


def _alert(alert_id: str = "al-1", status: str = "open") -> AlertEvent:
    return AlertEvent(
        id=alert_id,
        rule_id=7,
        rule_name="r",
        entity="ACME",
        stream="news",
        severity="critical",
        status=status,  # type: ignore[arg-type]
        window_start=AT,
        window_end=AT,
        fired_at=AT,
        explanation={"share": 0.6},
    )


def test_the_idempotency_key_is_derived_from_the_alert_and_channel_not_its_status() -> None:
    key = idempotency_key(_alert(), SLACK, "json")
    assert key == idempotency_key(_alert(), SLACK, "json")  # the same in any process, any attempt
    assert key == idempotency_key(_alert(status="resolved"), SLACK, "json")  # a takeover may find it resolved
    others = {
        idempotency_key(_alert("al-2"), SLACK, "json"),
        idempotency_key(_alert(), SLACK, "slack"),
        idempotency_key(_alert(), SLACK + "x", "json"),
    }
    assert key not in others and len(others) == 3
    assert "secretpart" not in key and key.isascii() and key.isalnum()


def test_the_bodies_keep_their_schemas_the_key_is_a_header() -> None:
    alert = _alert()
    assert payload(alert, "json") == alert.model_dump(mode="json")  # alert.v1: no other field allowed
    assert set(payload(alert, "slack")) == {"text"}


def test_permanent_statuses_leave_out_the_try_again_later_ones() -> None:
    assert {400, 401, 403, 404, 405, 410, 413, 422} == PERMANENT_STATUSES
    assert not {408, 425, 429, 500, 502, 503, 504} & PERMANENT_STATUSES
