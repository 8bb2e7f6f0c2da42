"""Webhook bodies, signatures, retry timing and the claim's lease (pure logic)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from tw_testing import alert_event

from services.alerter import deliver
from services.alerter.config import AlerterSettings
from services.alerter.deliver import Deliverer, payload, sign, verify
from shared.events import AlertEvent


def _alert(explanation: dict[str, object]) -> AlertEvent:
    return alert_event(explanation=explanation)


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


def test_verify_is_false_for_a_non_ascii_or_malformed_header() -> None:
    """``hmac.compare_digest`` raises TypeError on a non-ASCII str: a receiver calling
    verify() would answer a crafted header with a 500 instead of a refusal."""
    body, secret = b'{"id":"al-1"}', b"k"
    good = sign(secret, body, 1)
    assert verify(secret, body, good, now=1)
    for header in ("t=1,v1=é", good + "é", "t=١,v1=00", "t=1,v1=\ud800", "t=,v1=", "", "v1=" + good[9:]):
        assert verify(secret, body, header, now=1) is False, header
    assert verify(b"k", b"b", "t=1,v1=é", now=1) is False


def test_a_url_in_several_formats_is_sent_again_in_each_after_a_takeover() -> None:
    """Rows written before migration 0015 record the URL, not the format (``(url, None)``):
    with a URL delivered, a rule that sends it one format skips it, one that sends it two
    formats sends both again (such a row cannot tell which got through)."""
    hooks = [("https://a/x", "json"), ("https://a/x", "slack"), ("https://b/y", "json"), ("https://c/z", "slack")]

    def legacy(*urls: str) -> set[tuple[str, str | None]]:
        return {(url, None) for url in urls}

    assert deliver.pending(hooks, set()) == hooks
    assert deliver.pending(hooks, legacy("https://a/x", "https://b/y")) == [hooks[0], hooks[1], hooks[3]]
    assert deliver.pending(hooks, legacy("https://a/x", "https://b/y", "https://c/z")) == hooks[:2]


def deliverer(
    *, timeout_s: float = 1.0, max_attempts: int = 5, backoff_s: float = 0.5, sessions: Any = None
) -> Deliverer:
    return Deliverer(sessions, b"k", timeout_s=timeout_s, max_attempts=max_attempts, backoff_s=backoff_s)


async def test_the_backoff_doubles_up_to_a_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """20 attempts (the most allowed) from 0.5 s used to end on a 131,072 s (36 h) wait:
    each wait is capped at 300 s."""
    d = deliverer(max_attempts=20, backoff_s=0.5)
    waits: list[float] = []

    async def failing_post(*_: object) -> int:
        return 500

    async def no_log(*_: object) -> None:
        return None

    async def record(delay: float) -> None:
        waits.append(delay)

    monkeypatch.setattr(d, "_post", failing_post)
    monkeypatch.setattr(d, "_log", no_log)
    monkeypatch.setattr(asyncio, "sleep", record)
    await d._deliver(_alert({}), "https://hooks.example/x", "json")
    await d._client.aclose()
    assert waits == [min(0.5 * 2**k, 300.0) for k in range(19)]


@pytest.mark.parametrize("attempts", [20, 49, 60, 1100])
def test_the_lease_is_a_finite_timedelta_whatever_the_attempts(attempts: int) -> None:
    """49 attempts made ``timedelta(seconds=lease_s)`` overflow in every notify_new pass
    (1,100 made lease_s itself overflow): no webhook went out for any alert."""
    lease = timedelta(seconds=deliverer(timeout_s=300.0, max_attempts=attempts, backoff_s=300.0).lease_s)
    assert lease < timedelta(days=30)


def test_the_lease_counts_the_database_steps_of_every_attempt() -> None:
    """Recording each attempt (and reading the delivered channels before, ``done`` after)
    takes time too: the lease covers them at their longest, or it ran out while the
    alerter still retried and the alert was claimed and posted a second time."""
    d = deliverer(timeout_s=2.0, max_attempts=3, backoff_s=5.0)
    assert d.lease_s == 3 * 2.0 + (5.0 + 10.0) + (3 + 3) * deliver.DB_WRITE_S + 10.0  # + the channels' ages
    assert deliver.DB_WRITE_S > 0


class StalledSessions:
    """A database whose pool has no connection to give: every transaction waits for ever."""

    def begin(self) -> contextlib.AbstractAsyncContextManager[None]:
        @contextlib.asynccontextmanager
        async def stalled() -> AsyncIterator[None]:
            await asyncio.Event().wait()
            yield

        return stalled()


async def test_recording_an_attempt_gives_up_after_db_write_s(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The lease counts DB_WRITE_S per recorded attempt: a write that waits longer is
    given up (a warning), so the delivery stays within its lease."""
    monkeypatch.setattr(deliver, "DB_WRITE_S", 0.1, raising=False)
    d = deliverer(sessions=StalledSessions())
    with caplog.at_level(logging.WARNING, logger="services.alerter.deliver"):
        await asyncio.wait_for(d._log("al-1", "https://hooks.example/x", "json", 1, 500, "HTTP 500", False), 2.0)
    await d._client.aclose()
    assert "could not record webhook delivery: TimeoutError" in caplog.text


def test_webhook_settings_are_bounded() -> None:
    """No more than 20 attempts, a first backoff within the cap, a finite timeout."""
    AlerterSettings(webhook_max_attempts=20, webhook_backoff_s=300.0, webhook_timeout_s=300.0)
    for field, value in [
        ("webhook_max_attempts", 21),
        ("webhook_max_attempts", 49),
        ("webhook_backoff_s", 301.0),
        ("webhook_timeout_s", float("inf")),
        ("webhook_timeout_s", 301.0),
    ]:
        with pytest.raises(ValidationError):
            AlerterSettings(**{field: value})


def test_a_slack_message_says_when_the_alert_is_already_over_or_seen() -> None:
    assert payload(_alert({"share": 0.5}), "slack")["text"].startswith("*")
    for status in ("resolved", "acknowledged"):
        alert = _alert({"share": 0.5}).model_copy(update={"status": status})
        assert payload(alert, "slack")["text"].startswith(f"[{status.upper()}] *")
