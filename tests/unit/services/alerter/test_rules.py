"""Rule specification validation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.alerter.rules import Channel, RuleSpec


def spec(**over: Any) -> dict[str, Any]:
    return {
        "name": "r",
        "scope": {"entities": ["_all"]},
        "window_s": 300,
        "min_volume": 10,
        "abs_threshold": 0.5,
        "z_threshold": 2.0,
        "cooldown_s": 600,
        "resolve_after_s": 300,
        **over,
    }


@pytest.mark.parametrize("field", ["abs_threshold", "z_threshold"])
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_thresholds_refuse_infinity_and_nan(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as info:
        RuleSpec.model_validate(spec(**{field: value}))
    assert info.value.errors()[0]["loc"] == (field,)


def test_json_overflow_is_refused() -> None:
    with pytest.raises(ValidationError):
        RuleSpec.model_validate_json(
            '{"name": "r", "scope": {"entities": ["_all"]}, "window_s": 300, '
            '"min_volume": 1, "abs_threshold": 0.5, "z_threshold": 1e999, '
            '"cooldown_s": 0, "resolve_after_s": 0}'
        )
    assert RuleSpec.model_validate(spec(z_threshold=1e300)).z_threshold == 1e300  # large but finite is fine


def test_a_channel_url_the_webhook_client_cannot_send_to_is_refused() -> None:
    """``https://☃.net/hook`` is a valid URL (stored as ``https://xn--n3h.net/hook``) but
    httpx refuses its host (IDNA) when it sends: refused when the rule is saved."""
    hooks = [{"url": "https://ok.example/hook"}, {"url": "https://☃.net/hook", "format": "slack"}]
    with pytest.raises(ValidationError) as info:
        RuleSpec.model_validate(spec(channels=hooks))
    (error,) = info.value.errors()
    assert error["loc"] == ("channels", 1)
    assert "cannot send to this URL" in error["msg"]
    with pytest.raises(ValidationError):
        RuleSpec.model_validate(spec(channels=[{"url": "https://xn--n3h.net/hook"}]))


def test_international_channel_hosts_that_httpx_sends_to_are_accepted() -> None:
    rule = RuleSpec.model_validate(
        spec(channels=[{"url": "https://bücher.example/hook"}, {"url": "http://[::1]:8080/h"}])
    )
    assert [str(c.url) for c in rule.channels] == ["https://xn--bcher-kva.example/hook", "http://[::1]:8080/h"]


def test_a_stored_channel_is_still_read_back_as_a_channel() -> None:
    """The check is on a rule's channels, not on Channel: a rule stored before it still lists."""
    assert str(Channel.model_validate({"url": "https://xn--n3h.net/hook"}).url) == "https://xn--n3h.net/hook"
