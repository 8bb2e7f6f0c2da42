"""A slow receiver holds at most PER_URL_CONNECTIONS requests per webhook URL and
PER_HOST_CONNECTIONS per host: it cannot use up the
shared connection pool, nor the time budget of deliveries to other receivers. Real local
HTTP receivers on 127.0.0.1; no database (the delivery log is recorded in memory)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from aiohttp import web
from alert_scenario import LOCAL_POLICY, posts_served

from services.alerter import deliver
from services.alerter.deliver import Deliverer
from shared.events import AlertEvent

AT = datetime(2031, 3, 9, 14, 30, tzinfo=UTC)
Attempt = tuple[str, int, int | None, str | None, bool]


def _alert(alert_id: str) -> AlertEvent:
    return AlertEvent(
        id=alert_id, rule_id=7, rule_name="r", entity="ACME", stream="news", severity="critical", status="open",
        window_start=AT, window_end=AT, fired_at=AT, explanation={},
    )  # fmt: skip


def recording(d: Deliverer, monkeypatch: pytest.MonkeyPatch) -> list[Attempt]:
    """The attempts ``d`` records (url, attempt, status code, error, delivered), kept in
    memory instead of the database."""
    attempts: list[Attempt] = []

    async def log(
        _alert_id: str, url: str, _fmt: str, attempt: int, code: int | None, error: str | None, ok: bool
    ) -> None:
        attempts.append((url, attempt, code, error, ok))

    monkeypatch.setattr(d, "_log", log)
    return attempts


class Counting:
    """Answers every POST with 200 once ``release`` is set (or after ``delay_s``), counting
    the requests open at once."""

    def __init__(self, delay_s: float | None = None) -> None:
        self.delay_s = delay_s
        self.release = asyncio.Event()
        self.open = 0
        self.most = 0
        self.seen = 0

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.open += 1
        self.seen += 1
        self.most = max(self.most, self.open)
        try:
            if self.delay_s is None:
                await self.release.wait()
            else:
                await asyncio.sleep(self.delay_s)
            return web.Response(status=200)
        finally:
            self.open -= 1


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("slow_receivers", [1, 12])
async def test_a_slow_receiver_does_not_use_up_another_receivers_timeout(
    monkeypatch: pytest.MonkeyPatch, slow_receivers: int
) -> None:
    """110 deliveries in flight to a receiver that does not answer took all 100 pooled
    connections: a delivery to a healthy receiver waited for the pool inside its own
    attempt's timeout and failed (a failed attempt, retried or given up) though its
    receiver was fine. With 12 slow receivers, each at its PER_URL_CONNECTIONS, 120
    requests are open: more than httpx's default pool of 100. The slow deliveries run
    under a 5 s timeout, the healthy one under 1 s (as when the slow ones started
    earlier): it must be delivered on its first attempt, well within that second."""
    d = Deliverer(None, b"k", timeout_s=5.0, max_attempts=1, backoff_s=0.1, policy=LOCAL_POLICY)  # type: ignore[arg-type]
    attempts = recording(d, monkeypatch)
    slow, fast = Counting(), Counting(delay_s=0.0)
    try:
        async with contextlib.AsyncExitStack() as stack:
            slow_bases = [await stack.enter_async_context(posts_served(slow.handle)) for _ in range(slow_receivers)]
            fast_base = await stack.enter_async_context(posts_served(fast.handle))
            per_receiver = 110 // slow_receivers + 1
            held = [
                asyncio.create_task(d._deliver(_alert(f"al-{i}"), f"{base}/slow", "json"))
                for base in slow_bases
                for i in range(per_receiver)
            ]
            await until(lambda: slow.seen >= min(10 * slow_receivers, 100))
            await asyncio.sleep(0.3)  # every connection the slow receivers may take is taken
            d.timeout_s = 1.0
            started = time.monotonic()
            ok = await d._deliver(_alert("al-healthy"), f"{fast_base}/fast", "json")
            took = time.monotonic() - started
            slow.release.set()
            assert all(await asyncio.gather(*held))
    finally:
        await d.drain(timeout_s=1.0)
    assert ok
    assert [a for a in attempts if a[0].endswith("/fast")] == [(f"{fast_base}/fast", 1, 200, None, True)]
    assert took < 0.5


@pytest.mark.parametrize(
    ("urls", "most"), [(1, deliver.PER_URL_CONNECTIONS), (150, deliver.PER_HOST_CONNECTIONS)], ids=["url", "host"]
)
async def test_a_receiver_never_has_more_than_its_share_of_requests_open(
    monkeypatch: pytest.MonkeyPatch, urls: int, most: int
) -> None:
    """Deliveries at once to one webhook URL (30), or to 150 URLs of one host: at most
    PER_URL_CONNECTIONS, or PER_HOST_CONNECTIONS, requests open at a time, all delivered
    on their first attempt. Waiting for a slot is not part of an attempt's timeout: the
    later waves start after 0.5 s each, past the 0.9 s timeout, and are delivered all the
    same. The slots are dropped once unused (no memory kept per URL or host ever seen)."""
    d = Deliverer(None, b"k", timeout_s=0.9, max_attempts=1, backoff_s=0.1, policy=LOCAL_POLICY)  # type: ignore[arg-type]
    attempts = recording(d, monkeypatch)
    busy = Counting(delay_s=0.5)
    n = max(30, urls)
    try:
        async with posts_served(busy.handle) as base:
            results = await asyncio.gather(
                *(d._deliver(_alert(f"al-{i}"), f"{base}/x{i % urls}", "json") for i in range(n))
            )
    finally:
        await d.drain(timeout_s=1.0)
    assert busy.most == most
    assert all(results)
    assert sorted(a[1:] for a in attempts) == [(1, 200, None, True)] * n
    gc.collect()
    assert len(d._hosts) == 0 and len(d._urls) == 0


async def test_a_hanging_webhook_does_not_hold_up_another_on_the_same_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """One gateway serves many teams' webhooks (every Slack webhook is on
    hooks.slack.com:443): 30 alerts queued to one team's hanging path must not make another
    team's path on that host wait its turn (before, the limit was per host: 2.8 s)."""
    d = Deliverer(None, b"k", timeout_s=5.0, max_attempts=1, backoff_s=0.1, policy=LOCAL_POLICY)  # type: ignore[arg-type]
    recording(d, monkeypatch)
    hang = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        if request.match_info["name"] == "team-a":
            await hang.wait()
        return web.Response(status=200)

    try:
        async with posts_served(handle) as base:
            held = [asyncio.create_task(d._deliver(_alert(f"al-{i}"), f"{base}/team-a", "json")) for i in range(30)]
            await asyncio.sleep(0.3)
            started = time.monotonic()
            ok = await d._deliver(_alert("al-b"), f"{base}/team-b", "json")
            took = time.monotonic() - started
            hang.set()
            await asyncio.gather(*held)
    finally:
        await d.drain(timeout_s=1.0)
    assert ok and took < 0.5


def test_slots_are_per_scheme_host_and_port() -> None:
    """The same receiver whatever the path, query or case of the host; another port or
    scheme is another receiver. A URL that cannot be parsed is its own key (its
    attempt fails as before, when the request is built)."""
    key = deliver.host_key
    assert key("https://Hooks.Example.com/a?token=1") == key("https://hooks.example.com:443/b")
    assert key("http://hooks.example.com/a") == key("http://hooks.example.com:80/a")
    assert key("https://hooks.example.com/a") != key("http://hooks.example.com/a")
    assert key("https://hooks.example.com/a") != key("https://hooks.example.com:8443/a")
    assert key("https://hooks.example.com:x/a") == "https://hooks.example.com:x/a"
