"""A stored rule's repeated channels collapse to one (pure logic): the same channel as
:class:`RuleSpec` refuses it (URL as validated and format), the first kept in its place,
one warning per repeat dropped, its URL masked."""

from __future__ import annotations

from typing import Any

from services.alerter.rules import collapse_channels

HOOK = "https://hooks.example.com/services/T1/B1/secretpart"


def hook(url: str, fmt: str | None = None) -> dict[str, Any]:
    return {"type": "webhook", "url": url} | ({"format": fmt} if fmt else {})


def test_repeats_are_dropped_the_first_kept_in_place() -> None:
    other = hook("https://other.example.com/x")
    channels = [hook(HOOK), other, hook(HOOK, "json"), hook(HOOK, "slack"), hook(HOOK)]
    kept, warnings = collapse_channels(channels)
    assert kept == [hook(HOOK), other, hook(HOOK, "slack")]  # one URL in two formats: two channels
    assert warnings == [
        "channel 2 repeated channel 0 (https://hooks.example.com/…, format json): the rule was stored listing it "
        "twice (before that was refused); it now lists it once",
        "channel 4 repeated channel 0 (https://hooks.example.com/…, format json): the rule was stored listing it "
        "twice (before that was refused); it now lists it once",
    ]
    assert "secretpart" not in " ".join(warnings)


def test_spellings_of_one_url_are_one_channel() -> None:
    kept, warnings = collapse_channels([hook("https://Hooks.Example.com"), hook("https://hooks.example.com/")])
    assert kept == [hook("https://Hooks.Example.com")] and len(warnings) == 1


def test_distinct_and_unreadable_channels_are_kept_as_stored() -> None:
    channels = [hook(HOOK), {"url": "not a url"}, {"url": "not a url"}, hook(HOOK + "2")]
    assert collapse_channels(channels) == (channels, [])
    assert collapse_channels([]) == ([], [])
