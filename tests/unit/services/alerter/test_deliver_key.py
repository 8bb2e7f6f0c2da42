"""The Idempotency-Key names the alert and the channel, not the status a post announces."""

from __future__ import annotations

from datetime import UTC, datetime

from services.alerter.deliver import idempotency_key
from shared.events import AlertEvent

AT = datetime(2031, 3, 9, 14, 30, tzinfo=UTC)


def _alert(status: str, alert_id: str = "al-1") -> AlertEvent:
    return AlertEvent(
        id=alert_id, rule_id=7, rule_name="r", entity="ACME", stream="news", severity="critical", status=status,
        window_start=AT, window_end=AT, fired_at=AT, explanation={},
    )  # fmt: skip


def test_the_key_is_the_same_whatever_the_status_and_differs_per_alert_and_channel() -> None:
    url = "https://hooks.example.com/x?token=t"
    keys = {idempotency_key(_alert(s), url, "json") for s in ("open", "acknowledged", "resolved")}
    assert len(keys) == 1
    (key,) = keys
    assert idempotency_key(_alert("open"), url, "slack") != key
    assert idempotency_key(_alert("open"), url + "2", "json") != key
    assert idempotency_key(_alert("open", "al-2"), url, "json") != key
    assert "token" not in key and len(key) == 64


def test_the_key_is_the_one_earlier_alerters_sent_for_the_open_alert() -> None:
    """An alerter of the previous version (its key digested the status) posted an open
    alert and was stopped mid-request in a rolling upgrade: the new one taking the claim
    over sends the same key, whatever status it finds, so the receiver drops the repeat."""
    import hashlib

    url = "https://hooks.example.com/x?token=t"
    earlier = hashlib.sha256("\x00".join(("tonewatch-webhook-v1", "al-1", "open", "json", url)).encode()).hexdigest()
    assert idempotency_key(_alert("open"), url, "json") == earlier
    assert idempotency_key(_alert("resolved"), url, "json") == earlier
