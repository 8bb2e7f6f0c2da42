"""Which keys a rule's scope covers: ``all_entities`` and ``group`` only entities on the
watchlist (so leaving it resolves their alerts), never the stream-level ``_all``; a rule
naming its entities covers exactly those keys, ``_all`` included, watched or not."""

from __future__ import annotations

from typing import Any

import pytest

from services.alerter.evaluate import in_scope
from shared.db.models import AlertRule
from shared.entities import ALL

WATCHLIST: dict[str, str | None] = {"ACME": None, "BANK": "banks"}


def rule(scope: dict[str, Any], stream: str = "news") -> AlertRule:
    return AlertRule(stream=stream, scope=scope)


@pytest.mark.parametrize(
    ("scope", "entity", "covered"),
    [
        ({"all_entities": True}, "ACME", True),
        ({"all_entities": True}, "BANK", True),
        # off the watchlist (removed from it, or counted before it was): before, covered
        ({"all_entities": True}, "GONE", False),
        ({"all_entities": True}, ALL, False),  # the whole stream, not an entity
        ({"group": "banks"}, "BANK", True),
        ({"group": "banks"}, "ACME", False),
        ({"group": "banks"}, "GONE", False),
        ({"entities": ["GONE"]}, "GONE", True),  # named: covered whether watched or not
        ({"entities": ["ACME"]}, "BANK", False),
        ({"entities": [ALL]}, ALL, True),  # the shipped stream-negative-surge
        ({"entities": [ALL]}, "ACME", False),
    ],
)
def test_all_entities_and_groups_cover_watched_entities_only(scope: dict[str, Any], entity: str, covered: bool) -> None:
    assert in_scope(rule(scope), "news", entity, WATCHLIST) is covered


def test_an_underscore_all_key_on_the_watchlist_is_still_not_an_entity() -> None:
    """``_all`` counts every event of the stream: an all-entities rule never takes it for
    an entity, whatever the watchlist holds."""
    assert not in_scope(rule({"all_entities": True}), "news", ALL, {**WATCHLIST, ALL: None})


def test_another_stream_is_never_covered() -> None:
    assert not in_scope(rule({"all_entities": True}, stream="chat"), "news", "ACME", WATCHLIST)
    assert not in_scope(rule({"entities": [ALL]}, stream="chat"), "news", ALL, WATCHLIST)
