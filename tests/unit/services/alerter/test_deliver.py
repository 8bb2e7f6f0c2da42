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


def test_slack_text_from_the_feed_cannot_ping_link_or_break_out_of_its_line() -> None:
    """Entity names, terms and headlines come from the feed: ``&``, ``<``, ``>`` are
    escaped as Slack requires and line breaks become spaces."""
    hostile = "ACME <!channel> crash <https://evil.example|click here>\n*FAKE* all clear"
    alert = _alert(
        {
            "share": 0.62,
            "volume": 5,
            "top_terms": [{"term": "<@U123> & co\r\nx"}],
            "top_messages": [{"text": hostile}, {"text": "line\u2028two\rthree"}],
        }
    ).model_copy(update={"entity": "Evil <!here>\n> *ALL CLEAR*"})
    text = payload(alert, "slack")["text"]
    lines = text.split("\n")
    assert len(lines) == 6
    assert (
        lines[0]
        == "*CRITICAL* negative sentiment spike: *Evil &lt;!here&gt; &gt; *ALL CLEAR** (watchlist-negative-spike)"
    )
    assert lines[2] == "what the negative news is about: &lt;@U123&gt; &amp; co  x"
    assert lines[3] == "> ACME &lt;!channel&gt; crash &lt;https://evil.example|click here&gt; *FAKE* all clear"
    assert lines[4] == "> line two three"
    assert "<" not in text and "\r" not in text


def test_slack_headline_is_cut_before_it_is_escaped() -> None:
    text = payload(_alert({"top_messages": [{"text": "x" * 199 + "&amp;"}]}), "slack")["text"]
    assert text.split("\n")[2] == "> " + "x" * 199 + "&amp;"
