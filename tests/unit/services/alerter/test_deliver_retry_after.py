"""A 429 or 503's ``Retry-After`` is waited for: within the pass when it fits what the
pass has left, else by a later pass (``retry(delay)``) no sooner than asked; unreadable
values fall back to the usual backoff (pure logic, the receiver mocked)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from tw_testing import ALERT_AT, alert_event

from services.alerter import deliver
from services.alerter.config import MAX_BACKOFF_S
from services.alerter.deliver import Deliverer, retry_after
from shared.events import AlertEvent

AT = ALERT_AT
NOW = AT.timestamp()
URL = "https://hooks.example/services/T/B/secret"


def _alert() -> AlertEvent:
    return alert_event(id="al-ra", rule_name="r")


@pytest.mark.parametrize(
    ("value", "wait"),
    [
        ("30", 30.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("86400", MAX_BACKOFF_S),  # a day: clamped to our own longest backoff
        ("9999999999", MAX_BACKOFF_S),
        (format_datetime(datetime.fromtimestamp(NOW + 45, UTC), usegmt=True), 45.0),
        ("Sun, 09 Mar 2031 14:31:00 -0000", 60.0),  # no zone given: an HTTP-date is UTC
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_BACKOFF_S),
    ],
)
def test_retry_after_reads_seconds_and_http_dates_within_the_cap(value: str, wait: float) -> None:
    assert retry_after(value, now=NOW) == pytest.approx(wait)


@pytest.mark.parametrize(
    "value",
    [None, "", "-5", "1.5", "NaN", "nan", "inf", "1e3", "9" * 11, "9" * 400, "soon", "Sun, 09 Mar 2031 14:29:00 GMT"],
)
def test_unreadable_negative_huge_or_past_retry_after_is_the_usual_backoff(value: str | None) -> None:
    assert retry_after(value, now=NOW) is None


class Receiver:
    """Answers each post with the next of ``answers`` (status, Retry-After or None), then 200."""

    def __init__(self, *answers: tuple[int, str | None]) -> None:
        self.answers = list(answers)
        self.posts = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.posts += 1
        if not self.answers:
            return httpx.Response(200)
        code, header = self.answers.pop(0)
        return httpx.Response(code, headers={} if header is None else {"Retry-After": header})


async def _deliverer(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver, *, max_attempts: int = 5, backoff_s: float = 0.5
) -> tuple[Deliverer, list[float]]:
    """A deliverer posting to ``receiver`` (through the real :meth:`Deliverer._post`) that
    records its waits instead of sleeping, and records no attempt."""
    sessions: Any = None  # never used: attempts are not recorded
    d = Deliverer(sessions, b"k", timeout_s=1.0, max_attempts=max_attempts, backoff_s=backoff_s)
    await d._client.aclose()
    d._client = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    waits: list[float] = []

    async def no_log(*_: object) -> None:
        return None

    async def record(delay: float) -> None:
        waits.append(delay)

    monkeypatch.setattr(d, "_log", no_log)
    monkeypatch.setattr(asyncio, "sleep", record)
    return d, waits


async def test_a_rate_limited_receiver_is_not_posted_again_within_the_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slack answers 429 with ``Retry-After: 30``: with the defaults (5 attempts, 0.5 s
    doubling: 7.5 s of waits) it got 5 requests in 7.5 s. Now one: 30 s is longer than the
    pass has left, so the pass ends and hands 30 s on."""
    receiver = Receiver(*[(429, "30")] * 5)
    d, waits = await _deliverer(monkeypatch, receiver)
    outcome = await d._deliver_channel(_alert(), URL, "slack")
    await d._client.aclose()
    assert (receiver.posts, waits, outcome) == (1, [], 30.0)


@pytest.mark.parametrize("code", [429, 503])
async def test_a_retry_after_that_fits_the_pass_is_waited_for(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    receiver = Receiver((code, "2"))
    d, waits = await _deliverer(monkeypatch, receiver)
    assert await d._deliver(_alert(), URL, "json")
    await d._client.aclose()
    assert (receiver.posts, waits) == (2, [2.0])  # not the 0.5 s backoff


@pytest.mark.parametrize(
    ("code", "header"), [(500, "30"), (429, "-1"), (429, "soon"), (503, "Sun, 09 Mar 2001 14:29:00 GMT")]
)
async def test_other_statuses_and_unreadable_values_keep_the_backoff(
    monkeypatch: pytest.MonkeyPatch, code: int, header: str
) -> None:
    receiver = Receiver((code, header), (code, header))
    d, waits = await _deliverer(monkeypatch, receiver)
    assert await d._deliver(_alert(), URL, "json")
    await d._client.aclose()
    assert (receiver.posts, waits) == (3, [0.5, 1.0])


@pytest.mark.parametrize("seconds", ["0", "1", "3", "7", "8", "300"])
async def test_a_pass_never_waits_longer_than_its_backoffs(monkeypatch: pytest.MonkeyPatch, seconds: str) -> None:
    """The claim's lease counts the pass's backoffs: Retry-After waits stay within them, so
    a pass never outlasts its lease."""
    receiver = Receiver(*[(429, seconds)] * 5)
    d, waits = await _deliverer(monkeypatch, receiver)
    outcome = await d._deliver_channel(_alert(), URL, "json")
    await d._client.aclose()
    assert sum(waits) <= sum(deliver.backoff(0.5, r) for r in range(1, 5))
    assert outcome is not None and outcome >= float(seconds)  # the later pass waits at least as asked


async def test_the_later_pass_comes_no_sooner_than_the_receiver_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry-later delay was the channel's age (0 s here) or the first backoff: the
    next pass would have posted again after 0.5 s."""
    receiver = Receiver(*[(429, "30")] * 5)
    d, _ = await _deliverer(monkeypatch, receiver)
    delays: list[float] = []

    async def nothing_done(_: str) -> set[Any]:
        return set()

    async def no_age(_: str) -> dict[Any, float]:
        return {}

    async def retry(delay: float) -> None:
        delays.append(delay)

    async def done() -> None:
        raise AssertionError("not done: the channel is retried later")

    monkeypatch.setattr(d, "_done", nothing_done)
    monkeypatch.setattr(d, "_ages", no_age)
    await d._deliver_all(_alert(), [(URL, "slack"), ("https://other.example/x", "json")], done, retry)
    await d._client.aclose()
    assert delays == [30.0]
