"""A Slack message stays short whatever the explanation holds: each term cut to
:data:`SLACK_TERM_CHARS`, the text to :data:`SLACK_TEXT_CHARS`, the last line (the alert
id, where the rest is) always whole (pure logic)."""

from __future__ import annotations

from typing import Any

from tw_testing import alert_event

from services.alerter.deliver import SLACK_TERM_CHARS, SLACK_TEXT_CHARS, payload

LAST = "alert `al-123`: `tonewatch alerts show al-123` for the whole explanation"


def _text(explanation: dict[str, Any], entity: str = "ACME") -> str:
    alert = alert_event(rule_name="r", entity=entity, explanation=explanation)
    text = payload(alert, "slack")["text"]
    assert isinstance(text, str)
    return text


def test_long_terms_are_cut_and_the_text_is_capped() -> None:
    """Six 4,000-letter terms (a text's single word, up to the stored 4,000 characters)
    made a 27,215-character message."""
    terms = [{"term": chr(ord("a") + i) * 4000} for i in range(6)]
    text = _text({"share": 0.5, "top_terms": terms, "top_messages": [{"text": "&" * 200}] * 3})
    assert len(text) <= SLACK_TEXT_CHARS
    assert text.endswith("\n" + LAST)
    about = next(line for line in text.splitlines() if line.startswith("what the negative news is about: "))
    shown = about.removeprefix("what the negative news is about: ").split(", ")
    assert shown[0] == "a" * (SLACK_TERM_CHARS - 1) + "…"
    assert all(len(term) <= SLACK_TERM_CHARS for term in shown)


def test_a_term_is_cut_before_it_is_escaped() -> None:
    text = _text({"top_terms": [{"term": "x" * (SLACK_TERM_CHARS - 1) + "&"}]})
    assert "about: " + "x" * (SLACK_TERM_CHARS - 1) + "&amp;\n" in text


def test_the_terms_go_first_then_the_headlines_and_the_alert_id_stays() -> None:
    """Escaped terms (``&`` is 5 characters) and headlines can pass the cap together: the
    terms line gives way first, the alert id line never."""
    terms = [{"term": "&" * 49} for _ in range(6)]
    quotes = [{"text": "&" * 200}] * 3
    text = _text({"top_terms": terms, "top_messages": quotes})
    assert len(text) <= SLACK_TEXT_CHARS and text.endswith("\n" + LAST)
    lines = text.splitlines()
    assert sum(line.startswith("> ") for line in lines) == 3  # the headlines kept whole
    assert "what the negative news is about: " + "&amp;" * 49 in lines  # one term of six left
    text = _text({"top_terms": terms, "top_messages": quotes}, entity="&" * 100)
    assert len(text) <= SLACK_TEXT_CHARS and text.endswith("\n" + LAST)
    assert "about:" not in text and text.count("\n> ") == 2  # no term left, then a headline goes


def test_a_head_too_long_for_the_cap_is_cut_and_the_alert_id_kept() -> None:
    text = _text({"top_messages": [{"text": "x"}]}, entity="&" * 1000)  # as a rule's scope may allow
    assert len(text) <= SLACK_TEXT_CHARS and text.endswith("\n" + LAST)


def test_a_short_message_is_as_before() -> None:
    text = _text({"share": 0.62, "top_terms": [{"term": "fraud"}], "top_messages": [{"text": "ACME probe"}]})
    assert text.splitlines()[2:] == ["what the negative news is about: fraud", "> ACME probe", LAST]
