"""Webhook bodies (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.alerter.deliver import payload
from shared.events import AlertEvent

AT = datetime(2031, 3, 9, 14, 30, tzinfo=UTC)


def _alert(explanation: dict[str, object]) -> AlertEvent:
    return AlertEvent(
        id="al-123",
        rule_id=7,
        rule_name="watchlist-negative-spike",
        entity="ACME",
        stream="news",
        severity="critical",
        status="open",
        window_start=AT,
        window_end=AT,
        fired_at=AT,
        explanation=explanation,
    )


def test_slack_text_says_why_and_how_to_see_more() -> None:
    text = payload(
        _alert(
            {
                "share": 0.62,
                "baseline_mean": 0.18,
                "z": 8.8,
                "volume": 50,
                "top_terms": [{"term": "fraud", "window": 20, "baseline": 1, "z": 5.1}, ["legacy", 2.0]],
                "top_messages": [{"text": "ACME fraud probe widens", "negative_prob": 0.97}],
            }
        ),
        "slack",
    )["text"]
    lines = text.splitlines()
    assert lines[0] == "*CRITICAL* negative sentiment spike: *ACME* (watchlist-negative-spike)"
    assert lines[1] == "negative share 62% vs baseline 18% (z=8.8, volume 50)"
    assert lines[2] == "what the negative news is about: fraud"
    assert lines[3] == "> ACME fraud probe widens"
    assert lines[4] == "alert `al-123`: `tonewatch alerts show al-123` for the whole explanation"


def test_slack_text_without_terms_or_messages() -> None:
    text = payload(_alert({"share": 0.5}), "slack")["text"]
    assert "about:" not in text and ">" not in text and "al-123" in text


def test_generic_body_is_the_alert_event() -> None:
    body = payload(_alert({"share": 0.5}), "json")
    assert body["id"] == "al-123" and body["explanation"] == {"share": 0.5} and body["status"] == "open"
