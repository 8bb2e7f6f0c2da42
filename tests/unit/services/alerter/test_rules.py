"""Rule specification validation."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from pydantic import ValidationError

from services.alerter.netguard import AddressPolicy
from services.alerter.rules import Channel, RuleSpec, rule_context


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
        spec(channels=[{"url": "https://bücher.example/hook"}, {"url": "http://[2606:4700::1111]:8080/h"}])
    )
    assert [str(c.url) for c in rule.channels] == [
        "https://xn--bcher-kva.example/hook",
        "http://[2606:4700::1111]:8080/h",
    ]


INTERNAL_URLS = [
    ("http://127.0.0.1:15432/", "127.0.0.1 (loopback)"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 (link-local, cloud metadata)"),
    ("http://10.0.0.5/internal-admin", "10.0.0.5 (private)"),
    ("http://[::1]/", "::1 (loopback)"),
    ("http://[::ffff:127.0.0.1]:8080/", "(127.0.0.1: loopback)"),
    ("http://localhost:8080/hook", "localhost is 127.0.0.1 (loopback), ::1 (loopback)"),
    ("https://LOCALHOST./hook", "127.0.0.1 (loopback)"),
    ("http://0.0.0.0:8080/", "0.0.0.0 (unspecified)"),
    ("http://2130706433/", "127.0.0.1 (loopback)"),  # 127.0.0.1 as one number
    ("http://0x7f.1/", "127.0.0.1 (loopback)"),
    ("http://100.64.0.1/", "100.64.0.1 (shared)"),
    ("http://192.168.1.1/", "192.168.1.1 (private)"),
    ("http://[fd00:ec2::254]/", "fd00:ec2::254 (private, cloud metadata)"),
]


@pytest.mark.parametrize(("url", "refused"), INTERNAL_URLS)
def test_a_channel_url_naming_an_internal_address_is_refused(url: str, refused: str) -> None:
    """Without a validation context (the CLI) no internal network is allowed."""
    hooks = [{"url": "https://ok.example/hook"}, {"url": url}]
    with pytest.raises(ValidationError) as info:
        RuleSpec.model_validate(spec(channels=hooks))
    (error,) = info.value.errors()
    assert error["loc"] == ("channels", 1)
    assert "webhooks may not reach internal addresses: " in error["msg"] and refused in error["msg"], error["msg"]
    assert "TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS" in error["msg"]
    with pytest.raises(ValidationError):
        RuleSpec.model_validate(spec(channels=hooks), context=rule_context(AddressPolicy()))


def test_an_allowed_network_may_be_named_and_host_names_wait_for_delivery() -> None:
    allowed = AddressPolicy(allowed=(ipaddress.ip_network("10.1.2.0/24"), ipaddress.ip_network("127.0.0.1/32")))
    ok = [{"url": "http://10.1.2.3:8080/slack"}, {"url": "http://127.0.0.1:9000/hook"}]
    rule = RuleSpec.model_validate(spec(channels=ok), context=rule_context(allowed))
    assert [c.url.host for c in rule.channels] == ["10.1.2.3", "127.0.0.1"]
    with pytest.raises(ValidationError, match=r"10\.1\.3\.3 \(private\)"):
        RuleSpec.model_validate(spec(channels=[{"url": "http://10.1.3.3/"}]), context=rule_context(allowed))
    # A host name is resolved, and checked, when the webhook is sent: DNS can change.
    names = [{"url": "https://internal-admin.corp.example/hook"}, {"url": "http://metadata.google.internal/"}]
    assert len(RuleSpec.model_validate(spec(channels=names)).channels) == 2


def test_a_stored_channel_is_still_read_back_as_a_channel() -> None:
    """The check is on a rule's channels, not on Channel: a rule stored before it still lists."""
    assert str(Channel.model_validate({"url": "https://xn--n3h.net/hook"}).url) == "https://xn--n3h.net/hook"


def test_an_update_keeps_the_hosts_the_rule_already_has() -> None:
    """rule_context(policy, kept=current channels): the rule's own hosts are not judged
    again (a rule stored before the check can be disabled); a new internal host is."""
    legacy = [{"type": "webhook", "url": "http://10.1.2.3:8080/hook"}]
    context = rule_context(AddressPolicy(), kept=legacy)
    RuleSpec.model_validate(spec(channels=legacy, enabled=False), context=context)
    with pytest.raises(ValidationError, match=r"10\.1\.2\.4 \(private\)"):
        RuleSpec.model_validate(spec(channels=[{"url": "http://10.1.2.4/hook"}]), context=context)
    with pytest.raises(ValidationError, match=r"10\.1\.2\.3 \(private\)"):
        RuleSpec.model_validate(spec(channels=legacy), context=rule_context(AddressPolicy()))


@pytest.mark.parametrize("name", ["1", "007", "2147483648", "١٢"])
def test_an_all_digit_name_is_refused(name: str) -> None:
    """The CLI reads a number as a rule id: a rule named ``1`` would be taken for rule 1
    (``rules delete 1`` deleted the shipped rule, not the one named 1)."""
    with pytest.raises(ValidationError) as info:
        RuleSpec.model_validate(spec(name=name))
    (error,) = info.value.errors()
    assert error["loc"] == ("name",)
    assert "cannot be all digits" in error["msg"] and "id" in error["msg"]


@pytest.mark.parametrize("name", ["r1", "1a", "1.5", "2024-q1", "_1"])
def test_a_name_with_digits_and_more_is_accepted(name: str) -> None:
    assert RuleSpec.model_validate(spec(name=name)).name == name


@pytest.mark.parametrize("group", ["", "   "])
def test_an_empty_group_is_refused(group: str) -> None:
    """``in_scope`` takes an empty group for no group at all: such a rule never matched."""
    with pytest.raises(ValidationError, match="an empty group matches no entity"):
        RuleSpec.model_validate(spec(scope={"group": group}))


def test_a_group_is_trimmed_as_the_entities_groups_are() -> None:
    assert RuleSpec.model_validate(spec(scope={"group": " banks "})).scope.group == "banks"


@pytest.mark.parametrize("scope", [{"all_entities": True}, {"group": "banks"}, {"entities": ["ACME"]}])
def test_a_chat_rule_that_could_never_match_is_refused(scope: dict[str, Any]) -> None:
    """Chats are tagged only ``_all`` (entities are tagged in news): a chat rule over every
    entity, a group or named entities would never fire."""
    with pytest.raises(ValidationError) as info:
        RuleSpec.model_validate(spec(stream="chat", scope=scope))
    message = info.value.errors()[0]["msg"]
    assert 'a chat rule\'s scope must be {"entities": ["_all"]}' in message and "only under _all" in message
    assert RuleSpec.model_validate(spec(stream="news", scope=scope)).stream == "news"


def test_a_chat_rule_over_the_whole_stream_is_accepted() -> None:
    assert RuleSpec.model_validate(spec(stream="chat", scope={"entities": ["_all"]})).stream == "chat"
