"""One URL a rule sends in two formats (a ``json`` and a ``slack`` channel): the delivery
log keys each attempt by (alert, url, format), so the format delivered (or refused, or
given up) is not posted again while the other is still retried. Before (no format in the
log), every later pass posted both again. Real local receiver, real database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from alert_scenario import LOCAL_POLICY, posts_served
from integration.services.alerter.helpers import alert
from sqlalchemy import func, select, update

from services.alerter.deliver import Deliverer, idempotency_key
from shared.db.models import WebhookDelivery
from shared.events import AlertEvent

pytestmark = pytest.mark.integration


class ByFormat:
    """Answers each post by the format of its body: ``statuses["json"]`` or ``statuses["slack"]``."""

    def __init__(self) -> None:
        self.statuses = {"json": 200, "slack": 200}
        self.seen: list[tuple[str, str]] = []  # (format, Idempotency-Key)
        self.base = ""

    def url(self, name: str) -> str:
        return f"{self.base}/{name}?token=s3cr3t"

    def posts(self, fmt: str) -> list[str]:
        return [key for f, key in self.seen if f == fmt]

    async def handle(self, request: web.Request) -> web.Response:
        fmt = "slack" if set(json.loads(await request.read())) == {"text"} else "json"
        self.seen.append((fmt, request.headers["Idempotency-Key"]))
        return web.Response(status=self.statuses[fmt])


@pytest.fixture
async def by_format() -> AsyncIterator[ByFormat]:
    r = ByFormat()
    async with posts_served(r.handle) as base:
        r.base = base
        yield r


@pytest.fixture
async def deliverers(sessions: Any) -> AsyncIterator[Callable[..., Deliverer]]:
    made: list[Deliverer] = []

    def make(give_up_s: float = 3600.0) -> Deliverer:
        d = Deliverer(
            sessions, b"k" * 16, timeout_s=5.0, max_attempts=2, backoff_s=0.01, policy=LOCAL_POLICY, give_up_s=give_up_s
        )
        made.append(d)
        return d

    yield make
    for d in made:
        await d.drain(timeout_s=2.0)


async def one_pass(d: Deliverer, a: AlertEvent, channels: list[dict[str, Any]]) -> str:
    """One pass over the alert's channels (a later pass, a takeover, a restart: a
    deliverer reading the log afresh); ``done`` or ``retry``, whichever it ended with."""
    ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def done() -> None:
        ended.set_result("done")

    async def retry(delay_s: float) -> None:
        ended.set_result("retry")

    d.submit(a, channels, done, retry)
    return await asyncio.wait_for(ended, 60)


def two_formats(url: str) -> list[dict[str, Any]]:
    return [{"type": "webhook", "url": url, "format": "json"}, {"type": "webhook", "url": url, "format": "slack"}]


async def log_rows(sessions: Any, alert_id: str) -> list[tuple[str | None, int, bool]]:
    async with sessions() as s:
        q = select(WebhookDelivery).where(WebhookDelivery.alert_id == alert_id).order_by(WebhookDelivery.id)
        return [(r.format, r.attempt, r.delivered) for r in (await s.execute(q)).scalars()]


async def test_the_format_delivered_is_not_posted_again_while_the_other_is_retried(
    by_format: ByFormat, deliverers: Callable[..., Deliverer], sessions: Any
) -> None:
    by_format.statuses["slack"] = 503
    a, url = alert(), by_format.url("both")
    channels = two_formats(url)
    assert await one_pass(deliverers(), a, channels) == "retry"
    assert await one_pass(deliverers(), a, channels) == "retry"  # a later pass: slack only
    by_format.statuses["slack"] = 200
    assert await one_pass(deliverers(), a, channels) == "done"
    assert await one_pass(deliverers(), a, channels) == "done"  # nothing left: nothing posted
    assert by_format.posts("json") == [idempotency_key(a, url, "json")]  # once (before: once per pass)
    assert by_format.posts("slack") == [idempotency_key(a, url, "slack")] * 5
    rows = await log_rows(sessions, a.id)
    assert [r for r in rows if r[0] == "json"] == [("json", 1, True)]
    assert [r for r in rows if r[0] == "slack"][-1] == ("slack", 1, True)
    assert len(rows) == 6


async def test_the_format_refused_for_good_is_not_posted_again(
    by_format: ByFormat, deliverers: Callable[..., Deliverer]
) -> None:
    by_format.statuses |= {"json": 503, "slack": 410}
    a = alert()
    channels = two_formats(by_format.url("refused"))
    assert await one_pass(deliverers(), a, channels) == "retry"
    by_format.statuses["json"] = 200
    assert await one_pass(deliverers(), a, channels) == "done"
    assert await one_pass(deliverers(), a, channels) == "done"
    assert (len(by_format.posts("json")), len(by_format.posts("slack"))) == (3, 1)


async def test_a_format_given_up_is_not_posted_again_nor_is_the_one_delivered(
    by_format: ByFormat, deliverers: Callable[..., Deliverer], sessions: Any
) -> None:
    by_format.statuses["slack"] = 503
    a = alert()
    channels = two_formats(by_format.url("gave-up"))
    assert await one_pass(deliverers(give_up_s=0.0), a, channels) == "done"  # slack given up
    assert await one_pass(deliverers(give_up_s=0.0), a, channels) == "done"  # a takeover: nothing to post
    assert (len(by_format.posts("json")), len(by_format.posts("slack"))) == (1, 2)
    assert [r for r in await log_rows(sessions, a.id) if r[1] == 0] == [("slack", 0, False)]


async def test_each_format_is_given_up_by_its_own_age(
    by_format: ByFormat, deliverers: Callable[..., Deliverer], sessions: Any
) -> None:
    """json has been failing for two hours, slack only since now: json is given up, slack
    is retried (before, both were given up: the age was the URL's)."""
    by_format.statuses |= {"json": 503, "slack": 503}
    a, url = alert(), by_format.url("ages")
    async with sessions.begin() as s:
        s.add(WebhookDelivery(alert_id=a.id, url=url, format="json", attempt=1, status_code=503, delivered=False))
    async with sessions.begin() as s:
        two_hours = func.now() - timedelta(hours=2)
        await s.execute(update(WebhookDelivery).where(WebhookDelivery.alert_id == a.id).values(created_at=two_hours))
    assert await one_pass(deliverers(give_up_s=3600.0), a, two_formats(url)) == "retry"
    assert [r for r in await log_rows(sessions, a.id) if r[1] == 0] == [("json", 0, False)]
    assert await one_pass(deliverers(give_up_s=3600.0), a, two_formats(url)) == "retry"
    assert (len(by_format.posts("json")), len(by_format.posts("slack"))) == (2, 4)


async def test_rows_an_alerter_before_0015_wrote_settle_what_they_settled(
    by_format: ByFormat, deliverers: Callable[..., Deliverer], sessions: Any
) -> None:
    """A row without a format (written before 0015, or by an alerter of that version during
    a rolling upgrade) is read as that version read it: it settles a URL the rule sends in
    one format, not one it sends in several (sent again in each, as that version did)."""
    a = alert()
    single, double = by_format.url("single"), by_format.url("double")
    async with sessions.begin() as s:
        for url in (single, double):
            s.add(WebhookDelivery(alert_id=a.id, url=url, attempt=1, status_code=200, delivered=True))
    channels = [{"url": single, "format": "json"}, *two_formats(double)]
    assert await one_pass(deliverers(), a, channels) == "done"
    assert by_format.posts("json") == [idempotency_key(a, double, "json")]
    assert by_format.posts("slack") == [idempotency_key(a, double, "slack")]
    assert await one_pass(deliverers(), a, channels) == "done"  # now settled by format
    assert len(by_format.seen) == 2


async def test_the_age_of_a_row_without_a_format_counts_for_every_format_of_its_url(
    by_format: ByFormat, deliverers: Callable[..., Deliverer], sessions: Any
) -> None:
    a, url = alert(), by_format.url("old")
    async with sessions.begin() as s:
        s.add(WebhookDelivery(alert_id=a.id, url=url, attempt=1, status_code=503, delivered=False))
    async with sessions.begin() as s:
        two_hours = func.now() - timedelta(hours=2)
        await s.execute(update(WebhookDelivery).where(WebhookDelivery.alert_id == a.id).values(created_at=two_hours))
    by_format.statuses["slack"] = 503
    assert await one_pass(deliverers(give_up_s=3600.0), a, [{"url": url, "format": "slack"}]) == "done"
    assert len(by_format.posts("slack")) == 2
    assert [r for r in await log_rows(sessions, a.id) if r[1] == 0] == [("slack", 0, False)]
