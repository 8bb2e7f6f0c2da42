"""Which stream and scope changes may cover an entity a rule did not (a new
``covered_since``): widening restarts coverage, narrowing and equal scopes do not."""

from __future__ import annotations

from typing import Any

import pytest

from services.alerter.repo import widens
from shared.db.models import AlertRule

GROUPS: dict[str, str | None] = {"A": "banks", "B": "banks", "C": "tech", "D": None}


def rule(scope: dict[str, Any], stream: str = "news") -> AlertRule:
    return AlertRule(stream=stream, scope={"entities": [], "group": None, "all_entities": False, **scope})


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"entities": ["A"]}, {"entities": ["A", "C"]}, True),  # an entity added
        ({"entities": ["A", "C"]}, {"entities": ["A"]}, False),  # one dropped
        ({"entities": ["A"]}, {"entities": ["A"]}, False),
        ({"entities": ["A"]}, {"all_entities": True}, True),
        ({"entities": ["A"]}, {"group": "banks"}, True),  # B comes in (and later members)
        ({"group": "banks"}, {"entities": ["A", "B"]}, False),  # the group's members, named
        ({"group": "banks"}, {"entities": ["A", "C"]}, True),
        ({"group": "banks"}, {"entities": ["_all"]}, True),  # the stream is no group member
        ({"group": "banks"}, {"group": "tech"}, True),
        ({"group": "banks"}, {"group": "banks"}, False),
        ({"group": "banks"}, {"all_entities": True}, True),
        ({"all_entities": True}, {"group": "tech"}, False),
        ({"all_entities": True}, {"entities": ["D"]}, False),  # watched, no group
        ({"all_entities": True}, {"entities": ["E"]}, True),  # not on the watchlist
        ({"all_entities": True}, {"all_entities": True}, False),
    ],
)
def test_widens(old: dict[str, Any], new: dict[str, Any], expected: bool) -> None:
    assert widens(rule(old), rule(new), GROUPS) is expected


def test_a_stream_change_widens_and_a_legacy_spelling_of_the_same_scope_does_not() -> None:
    assert widens(rule({"entities": ["_all"]}), rule({"entities": ["_all"]}, stream="chat"), GROUPS)
    legacy = AlertRule(stream="news", scope={"group": "banks"})
    assert not widens(legacy, rule({"group": "banks"}), GROUPS)
