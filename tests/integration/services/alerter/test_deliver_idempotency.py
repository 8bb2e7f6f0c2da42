"""Repeated webhook posts can be dropped, and permanent refusals are not repeated: real
local HTTP receivers (aiohttp on 127.0.0.1) and the delivery log in the real database."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from alert_scenario import LOCAL_POLICY
from integration.services.alerter.helpers import Receiver, alert
from sqlalchemy import select

from services.alerter.deliver import Deliverer, verify
from shared.db.models import WebhookDelivery
from shared.events import AlertEvent

pytestmark = pytest.mark.integration
SECRET = b"test-secret"
IDEMPOTENCY_HEADER = "Idempotency-Key"  # the wire names, spelt out: receivers depend on them
SIGNATURE_HEADER = "X-Tonewatch-Signature"


@pytest.fixture
async def deliverers(sessions: Any) -> AsyncIterator[Callable[..., Deliverer]]:
    made: list[Deliverer] = []

    def make(*, timeout_s: float = 5.0, max_attempts: int = 3) -> Deliverer:
        d = Deliverer(
            sessions, SECRET, timeout_s=timeout_s, max_attempts=max_attempts, backoff_s=0.01, policy=LOCAL_POLICY
        )
        made.append(d)
        return d

    yield make
    for d in made:
        await d.drain(timeout_s=2.0)


async def send(d: Deliverer, a: AlertEvent, channels: list[dict[str, Any]]) -> None:
    """Submit and wait for ``done`` (every channel delivered or out of attempts)."""
    done = asyncio.Event()

    async def mark() -> None:
        done.set()

    d.submit(a, channels, mark)
    await asyncio.wait_for(done.wait(), 60)


async def attempts(sessions: Any, alert_id: str) -> list[tuple[str, int | None, str | None, bool]]:
    async with sessions() as s:
        q = select(WebhookDelivery).where(WebhookDelivery.alert_id == alert_id).order_by(WebhookDelivery.id)
        return [(r.url, r.status_code, r.error, r.delivered) for r in (await s.execute(q)).scalars()]


async def test_a_late_answer_repeats_the_post_with_one_key_a_restart_keeps(
    receiver: Receiver, deliverers: Callable[..., Deliverer]
) -> None:
    """The receiver handles each post but answers after the timeout: the alerter retries
    (it cannot know), and every repeat carries the same ``Idempotency-Key``, also from
    another deliverer (a restarted alerter); each channel and format has its own."""
    a = alert()
    slow_json, slow_slack = receiver.url("slow-json"), receiver.url("slow-slack")
    channels = [{"url": slow_json}, {"url": slow_slack, "format": "slack"}]
    await send(deliverers(timeout_s=0.2, max_attempts=3), a, channels)
    receiver.release.set()
    json_posts, slack_posts = receiver.posts("slow-json"), receiver.posts("slow-slack")
    assert len(json_posts) == 3 and len(slack_posts) == 3  # retried: the answers came too late

    json_keys = {h[IDEMPOTENCY_HEADER] for _, h in json_posts}
    slack_keys = {h[IDEMPOTENCY_HEADER] for _, h in slack_posts}
    assert len(json_keys) == 1 and len(slack_keys) == 1 and json_keys != slack_keys
    (json_key,) = json_keys
    # the bodies keep their schemas (the generic one is the alert event, alert.v1): the key is a header
    for body, headers in json_posts:
        assert json.loads(body) == a.model_dump(mode="json")
        assert verify(SECRET, body, headers[SIGNATURE_HEADER])
    assert all(set(json.loads(body)) == {"text"} for body, _ in slack_posts)

    await send(deliverers(), a, channels)  # another alerter (a restart, a takeover) sends it again
    assert receiver.posts("slow-json")[-1][1][IDEMPOTENCY_HEADER] == json_key
    assert receiver.posts("slow-slack")[-1][1][IDEMPOTENCY_HEADER] in slack_keys

    other = alert()
    await send(deliverers(), other, [{"url": slow_json}])
    assert receiver.posts("slow-json")[-1][1][IDEMPOTENCY_HEADER] != json_key  # another alert, another key


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 410, 413, 422])
async def test_a_permanent_refusal_is_posted_once_and_logged(
    receiver: Receiver,
    deliverers: Callable[..., Deliverer],
    sessions: Any,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    receiver.statuses["gone"] = status
    a = alert()
    url = receiver.url("gone")
    with caplog.at_level(logging.WARNING, logger="services.alerter.deliver"):
        await send(deliverers(max_attempts=3), a, [{"url": url}])
    assert len(receiver.posts("gone")) == 1
    assert await attempts(sessions, a.id) == [(url, status, f"HTTP {status}: a permanent refusal, not retried", False)]
    (record,) = [r for r in caplog.records if a.id in r.getMessage()]
    assert record.levelno == logging.ERROR and "not retried" in record.getMessage()
    assert "s3cr3t" not in record.getMessage()  # the URL masked


@pytest.mark.parametrize("status", [408, 425, 429, 500, 503])
async def test_a_try_again_later_answer_is_retried(
    receiver: Receiver, deliverers: Callable[..., Deliverer], sessions: Any, status: int
) -> None:
    receiver.statuses["busy"] = status
    a = alert()
    await send(deliverers(max_attempts=3), a, [{"url": receiver.url("busy")}])
    assert len(receiver.posts("busy")) == 3
    assert [(code, ok) for _, code, _, ok in await attempts(sessions, a.id)] == [(status, False)] * 3


async def test_a_channel_a_stored_rule_lists_twice_is_posted_once(
    receiver: Receiver, deliverers: Callable[..., Deliverer]
) -> None:
    """Rules saved before repeated channels were refused may still list one twice."""
    url = receiver.url("twice")
    await send(deliverers(), alert(), [{"url": url}, {"url": url, "format": "json"}, {"url": url, "format": "slack"}])
    formats = sorted("slack" if set(json.loads(body)) == {"text"} else "json" for body, _ in receiver.posts("twice"))
    assert formats == ["json", "slack"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 410, 413, 422])
async def test_a_refused_channel_is_done_for_a_restarted_alerter_and_a_failing_one_is_retried(
    receiver: Receiver, deliverers: Callable[..., Deliverer], sessions: Any, status: int
) -> None:
    """Another deliverer (a restarted alerter, or one taking the claim over) sends the
    alert again: the channel that refused it for good is not posted again (before, it
    was: only delivered channels were skipped), the delivered one neither, the one that
    only failed (503) is."""
    receiver.statuses |= {"gone": status, "busy": 503}
    gone, busy, fine = receiver.url("gone"), receiver.url("busy"), receiver.url("fine")
    a = alert()
    channels = [{"url": gone}, {"url": busy}, {"url": fine}]
    await send(deliverers(max_attempts=2), a, channels)
    assert [len(receiver.posts(n)) for n in ("gone", "busy", "fine")] == [1, 2, 1]

    receiver.statuses["busy"] = 200
    await send(deliverers(max_attempts=2), a, channels)
    assert [len(receiver.posts(n)) for n in ("gone", "busy", "fine")] == [1, 3, 1]
    assert [(code, ok) for url, code, _, ok in await attempts(sessions, a.id) if url == gone] == [(status, False)]
    assert [(code, ok) for url, code, _, ok in await attempts(sessions, a.id) if url == busy] == [
        (503, False),
        (503, False),
        (200, True),
    ]


async def test_a_refusal_after_failures_is_final_whatever_status_the_takeover_finds(
    receiver: Receiver, deliverers: Callable[..., Deliverer], sessions: Any
) -> None:
    """The first alerter got only 503s: the next one (the alert resolved meanwhile: a
    takeover sends the status at its claim) posts again and is refused (410); a third
    posts nothing. The log, like the webhooks, is per alert, not per status (a delivered
    channel is skipped in another status too), and so is the Idempotency-Key."""
    receiver.statuses["later"] = 503
    opened = alert()
    resolved = opened.model_copy(update={"status": "resolved"})
    channels = [{"url": receiver.url("later")}, {"url": receiver.url("fine")}]
    await send(deliverers(max_attempts=1), opened, channels)
    receiver.statuses["later"] = 410
    await send(deliverers(max_attempts=3), resolved, channels)
    await send(deliverers(max_attempts=3), resolved, channels)
    await send(deliverers(max_attempts=3), opened, channels)
    later = receiver.posts("later")
    assert [json.loads(body)["status"] for body, _ in later] == ["open", "resolved"]
    assert later[0][1][IDEMPOTENCY_HEADER] == later[1][1][IDEMPOTENCY_HEADER]  # one alert, one key per channel
    assert len(receiver.posts("fine")) == 1
    assert [code for url, code, _, _ in await attempts(sessions, opened.id) if url.endswith("later?token=s3cr3t")] == [
        503,
        410,
    ]
