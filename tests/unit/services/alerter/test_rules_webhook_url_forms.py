"""One webhook spelt two ways is one channel: a fragment is refused when a rule is saved
(never sent: ``u#x`` is ``u`` again), repeats are told by the URL the receiver gets
(``u?``, ``U``, ``u.``, ``u:443``), and a rule stored before that still loads, changes and
delivers once per webhook (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tw_testing import rule_spec

from services.alerter.deliver import Deliverer, url_key
from services.alerter.netguard import AddressPolicy
from services.alerter.rules import RuleSpec, collapse_channels, rule_context
from shared.events import AlertEvent

HOOK = "https://hooks.example.com/services/T1/B1/secretpart"


def spec(channels: list[dict[str, Any]], kept: list[dict[str, Any]] | None = None) -> RuleSpec:
    rule: RuleSpec = rule_spec(channels, rule_context(AddressPolicy(), kept or ()))
    return rule


@pytest.mark.parametrize("url", [HOOK + "#x", HOOK + "#", "https://hooks.example.com#top"])
def test_a_fragment_is_refused_with_a_reason(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        spec([{"url": url, "format": "slack"}])
    (error,) = info.value.errors()
    assert error["loc"] == ("channels", 0)
    assert "cannot have a fragment" in error["msg"] and "never sent" in error["msg"]


@pytest.mark.parametrize(
    "second",
    [
        HOOK + "?",
        HOOK.replace("https://hooks.example.com", "HTTPS://Hooks.Example.COM"),
        HOOK.replace("hooks.example.com", "hooks.example.com."),
        HOOK.replace("hooks.example.com", "hooks.example.com:443"),
    ],
)
def test_two_spellings_of_one_webhook_are_a_repeat(second: str) -> None:
    """``u`` and ``u?`` differed as strings: the receiver got every alert twice."""
    with pytest.raises(ValidationError) as info:
        spec([{"url": HOOK, "format": "slack"}, {"url": second, "format": "slack"}])
    assert "channel 1 repeats channel 0" in str(info.value) and "secretpart" not in str(info.value)


@pytest.mark.parametrize(
    "other",
    [
        HOOK + "?a=1",
        HOOK.replace("secretpart", "SECRETPART"),  # a path's case may matter to the receiver
        HOOK.replace("hooks.example.com", "hooks.example.com:8443"),
        HOOK.replace("https://", "https://bot:pw@"),  # sent as Authorization: another request
    ],
)
def test_other_webhooks_stay_distinct(other: str) -> None:
    assert len(spec([{"url": HOOK}, {"url": other}]).channels) == 2


def test_a_rule_stored_with_a_fragment_can_still_be_changed() -> None:
    """The update validates the rule as a whole with its current channels ``kept``: a
    fragment stored before it was refused does not block a change of anything else."""
    stored = [{"type": "webhook", "url": HOOK + "#ops", "format": "slack"}]
    assert str(spec(stored, kept=stored).channels[0].url) == HOOK + "#ops"
    with pytest.raises(ValidationError):
        spec([*stored, {"url": "https://other.example/#x"}], kept=stored)  # a new one is still refused


def test_stored_repeats_in_two_spellings_collapse_on_an_update() -> None:
    first, json = {"url": HOOK, "format": "slack"}, {"url": HOOK + "?"}  # json: another format
    kept, warnings = collapse_channels(
        [first, {"url": HOOK + "#x", "format": "slack"}, json, {**json, "format": "slack"}]
    )
    assert kept == [first, json]
    assert [w[:31] for w in warnings] == ["channel 1 repeated channel 0 (h", "channel 3 repeated channel 0 (h"]
    assert all("secretpart" not in w for w in warnings)


def test_url_key() -> None:
    assert url_key("HTTPS://Hooks.Example.COM.:443/a?#f") == "https://hooks.example.com/a"
    assert url_key("http://h:80") == "http://h/"
    assert url_key("http://u:p@[::1]:8080/x?q=1#f") == "http://u:p@[::1]:8080/x?q=1"
    assert url_key("http://[::1") == "http://[::1"  # unparseable: its own key


async def test_a_stored_rule_listing_one_webhook_thrice_delivers_it_once() -> None:
    """dup.py: ``u``, ``u#x`` and ``u?`` (stored before they were refused) got three posts,
    with three Idempotency-Keys. Sent once, under the first spelling."""
    sessions: Any = None
    d = Deliverer(sessions, b"k", timeout_s=1.0, max_attempts=1, backoff_s=0.1)
    sent: list[list[tuple[str, str]]] = []

    async def deliver_all(_: AlertEvent, hooks: list[tuple[str, str]], *__: object) -> None:
        sent.append(hooks)

    d._deliver_all = deliver_all  # type: ignore[method-assign]
    channels = [{"url": u, "format": "slack"} for u in (HOOK, HOOK + "#x", HOOK + "?")] + [{"url": HOOK + "#y"}]
    alert = AlertEvent.model_validate(
        {
            "id": "al-1",
            "rule_id": 1,
            "rule_name": "r",
            "entity": "ACME",
            "stream": "news",
            "severity": "info",
            "status": "open",
            "window_start": "2031-03-09T14:30:00Z",
            "window_end": "2031-03-09T14:30:00Z",
            "fired_at": "2031-03-09T14:30:00Z",
            "explanation": {},
        }
    )
    d.submit(alert, channels)
    await d.drain(timeout_s=1.0)
    assert sent == [[(HOOK, "slack"), (HOOK + "#y", "json")]]
