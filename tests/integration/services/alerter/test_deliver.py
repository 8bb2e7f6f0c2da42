"""Webhook delivery against real local HTTP endpoints (a hostile or broken receiver),
with the delivery log in the real database. The endpoints listen on 127.0.0.1, which
the deliverers allow explicitly (webhooks reach no internal network by default)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alert_scenario import LOCAL_POLICY, Hook, add_rule
from integration.services.alerter.helpers import AT, alert
from sqlalchemy import delete, func, select, update
from tw_testing import wait_until

from services.alerter.deliver import Deliverer
from services.alerter.netguard import AddressPolicy
from services.alerter.publish import notify_new
from shared.db.models import Alert, AlertRule, WebhookDelivery
from shared.events import AlertEvent

pytestmark = pytest.mark.integration


@pytest.fixture
async def deliverers(sessions: Any) -> AsyncIterator[Callable[..., Deliverer]]:
    made: list[Deliverer] = []

    def make(
        *, timeout_s: float = 1.0, max_attempts: int = 2, backoff_s: float = 0.05, policy: AddressPolicy = LOCAL_POLICY
    ) -> Deliverer:
        d = Deliverer(
            sessions,
            b"test-secret",
            timeout_s=timeout_s,
            max_attempts=max_attempts,
            backoff_s=backoff_s,
            policy=policy,
        )
        made.append(d)
        return d

    yield make
    for d in made:
        for task in list(d._tasks):  # left running only when a test failed
            task.cancel()
        await d.drain(timeout_s=2.0)


async def deliver(d: Deliverer, a: AlertEvent, url: str, *, within: float, fmt: str = "json") -> None:
    """Submit one channel and wait (at most ``within`` seconds) for ``done``. Tests assert
    on what was recorded and what the endpoint saw, not on times."""
    done = asyncio.Event()

    async def mark() -> None:
        done.set()

    d.submit(a, [{"url": url, "format": fmt}], mark)
    await asyncio.wait_for(done.wait(), within)


async def deliveries(sessions: Any, alert_id: str) -> list[WebhookDelivery]:
    async with sessions() as s:
        q = select(WebhookDelivery).where(WebhookDelivery.alert_id == alert_id).order_by(WebhookDelivery.id)
        return list((await s.execute(q)).scalars())


@dataclass
class RawEndpoint:
    """A hand-written HTTP/1.1 receiver on a real local socket: it reads the request,
    then ``answer`` writes whatever it likes. Records how much it sent and whether the
    client hung up first."""

    answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter, RawEndpoint], Awaitable[None]]
    sent: int = 0
    hung_up: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def write(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> bool:
        """Write ``data``; False once the client has hung up."""
        if reader.at_eof() or writer.is_closing():
            self.hung_up = True
            return False
        try:
            writer.write(data)
            await writer.drain()
        except ConnectionError:
            self.hung_up = True
            return False
        self.sent += len(data)
        return True


@pytest.fixture
async def raw_endpoint() -> AsyncIterator[Callable[..., Awaitable[RawEndpoint]]]:
    servers: list[asyncio.Server] = []
    handlers: set[asyncio.Task[None]] = set()

    async def start(
        answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter, RawEndpoint], Awaitable[None]],
    ) -> RawEndpoint:
        ep = RawEndpoint(answer)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                await ep.answer(reader, writer, ep)
            except (ConnectionError, asyncio.IncompleteReadError):
                ep.hung_up = True
            finally:
                ep.finished.set()
                writer.close()
                handlers.discard(task)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        ep.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
        return ep

    yield start
    for task in list(handlers):
        task.cancel()
    for server in servers:
        server.close()
        await server.wait_closed()


async def drip_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ep: RawEndpoint) -> None:
    """A status line, then a header one byte every 0.2 s, never finished."""
    if await ep.write(reader, writer, b"HTTP/1.1 200 OK\r\nX-Drip: "):
        while await ep.write(reader, writer, b"a"):
            await asyncio.sleep(0.2)


async def drip_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ep: RawEndpoint) -> None:
    """200 with Content-Length 1000, then the body one byte every 0.2 s."""
    if await ep.write(reader, writer, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"):
        for _ in range(1000):
            if not await ep.write(reader, writer, b"a"):
                return
            await asyncio.sleep(0.2)


BIG = 50 * 1024 * 1024
CHUNK = 1024 * 1024


async def huge_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ep: RawEndpoint) -> None:
    """500 with a 50 MB body, sent steadily (1 MB every 0.05 s: 2.5 s in all)."""
    if await ep.write(reader, writer, f"HTTP/1.1 500 Oops\r\nContent-Length: {BIG}\r\n\r\n".encode()):
        for _ in range(BIG // CHUNK):
            if not await ep.write(reader, writer, b"x" * CHUNK):
                return
            await asyncio.sleep(0.05)


async def test_an_attempt_is_bounded_as_a_whole_by_the_timeout(
    deliverers: Callable[..., Deliverer], raw_endpoint: Callable[..., Awaitable[RawEndpoint]], sessions: Any
) -> None:
    """httpx's timeout restarts on every byte: a receiver dripping its headers a byte at
    a time must not hold an attempt past the timeout (or the claim past its lease)."""
    ep = await raw_endpoint(drip_headers)
    d = deliverers(timeout_s=1.0, max_attempts=2, backoff_s=0.05)
    a = alert()
    await deliver(d, a, ep.url, within=8.0)
    rows = await deliveries(sessions, a.id)
    assert [(r.attempt, r.delivered, r.status_code) for r in rows] == [(1, False, None), (2, False, None)]
    assert all(r.error == "no response within 1 s" for r in rows)
    await asyncio.wait_for(ep.finished.wait(), 5.0)
    assert ep.hung_up


async def test_a_body_dripped_after_a_2xx_status_does_not_hold_the_attempt(
    deliverers: Callable[..., Deliverer], raw_endpoint: Callable[..., Awaitable[RawEndpoint]], sessions: Any
) -> None:
    """The case the review saw: 200, Content-Length 1000, then a byte a second. The
    status is all that counts: delivered at once, the connection dropped."""
    ep = await raw_endpoint(drip_body)
    d = deliverers(timeout_s=1.0, max_attempts=2, backoff_s=0.05)
    a = alert()
    await deliver(d, a, ep.url, within=8.0)  # the old client read the 1,000 bytes at one a second
    rows = await deliveries(sessions, a.id)
    assert [(r.attempt, r.delivered, r.status_code) for r in rows] == [(1, True, 200)]
    await asyncio.wait_for(ep.finished.wait(), 5.0)
    assert ep.hung_up and ep.sent < 100


async def test_a_huge_response_body_is_not_read(
    deliverers: Callable[..., Deliverer], raw_endpoint: Callable[..., Awaitable[RawEndpoint]], sessions: Any
) -> None:
    """Only the status is used: the client hangs up after the headers instead of
    reading (and holding) a 50 MB body; a generous timeout so that only this is tested."""
    ep = await raw_endpoint(huge_body)
    d = deliverers(timeout_s=30.0, max_attempts=1)
    a = alert()
    await deliver(d, a, ep.url, within=20.0)
    rows = await deliveries(sessions, a.id)
    assert [(r.attempt, r.delivered, r.status_code, r.error) for r in rows] == [(1, False, 500, "HTTP 500")]
    await asyncio.wait_for(ep.finished.wait(), 10.0)
    assert ep.hung_up, f"the client read the whole body ({ep.sent} bytes)"
    assert ep.sent < BIG // 5


SECRET_PATH = "services/T0SECRET/B0SECRET/XXXXsecretpathXXXX"
TOKEN = "t0ps3cret-token"


@pytest.mark.parametrize("failure", ["status", "refused"])
async def test_a_failing_attempt_logs_scheme_and_host_only(
    failure: str,
    deliverers: Callable[..., Deliverer],
    hook: Hook,
    sessions: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A webhook URL's path (a Slack incoming webhook) and query (``?token=``) are
    credentials: a failing attempt's warning names scheme and host only."""
    if failure == "status":
        hook.statuses["secret-hook"] = 500
        url, host = f"{hook.url('secret-hook')}?token={TOKEN}", "http://127.0.0.1/…"
        secret_bits = ["secret-hook", TOKEN, hook.base]
    else:
        url, host = f"http://bot:hunter2@127.0.0.1:1/{SECRET_PATH}?token={TOKEN}", "http://127.0.0.1/…"
        secret_bits = ["secretpath", "SECRET", TOKEN, "hunter2", "bot:"]
    caplog.set_level(logging.WARNING, logger="services.alerter.deliver")
    d = deliverers(timeout_s=2.0, max_attempts=2, backoff_s=0.05)
    a = alert()
    await deliver(d, a, url, within=10.0)
    warnings = [r.getMessage() for r in caplog.records if r.name == "services.alerter.deliver"]
    assert len(warnings) == 2, warnings
    assert all(f"webhook {host} attempt" in w for w in warnings), warnings
    for bit in secret_bits:
        assert bit not in caplog.text
    rows = await deliveries(sessions, a.id)
    assert [(r.attempt, r.delivered, r.url) for r in rows] == [(1, False, url), (2, False, url)]


async def test_an_error_outside_httpx_is_a_failed_attempt_and_the_alert_is_done(
    deliverers: Callable[..., Deliverer], sessions: Any
) -> None:
    """``https://☃.net/hook`` is stored as ``https://xn--n3h.net/hook``; httpx raises an
    IDNA error (not an httpx error) building the request. Each attempt is recorded as
    failed with the reason, and ``done`` still comes: the alert is not claimed again."""
    d = deliverers(timeout_s=2.0, max_attempts=2, backoff_s=0.05)
    a = alert()
    await deliver(d, a, "https://xn--n3h.net/hook", within=10.0)
    rows = await deliveries(sessions, a.id)
    assert [(r.attempt, r.delivered, r.status_code) for r in rows] == [(1, False, None), (2, False, None)]
    assert all(r.error and r.error.startswith("InvalidCodepoint: ") for r in rows), [r.error for r in rows]


def deliver_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "services.alerter.deliver"]


async def test_a_host_resolving_to_loopback_is_refused_without_the_allowance_and_delivered_with_it(
    deliverers: Callable[..., Deliverer], hook: Hook, sessions: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """``localhost`` is a name, not an address: the guard resolves it when connecting and
    finds 127.0.0.1 (and ::1 where the hosts file says so). Without an allowance: one failed
    attempt, not retried (it would be refused again), the reason logged without the URL's
    path or query, nothing sent. With the loopback addresses allowed: delivered."""
    port = hook.base.rsplit(":", 1)[1]
    url = f"http://localhost:{port}/secret-hook?token={TOKEN}"
    caplog.set_level(logging.WARNING, logger="services.alerter.deliver")
    a = alert()
    await deliver(deliverers(max_attempts=3, policy=AddressPolicy()), a, url, within=10.0)
    rows = await deliveries(sessions, a.id)
    assert [(r.attempt, r.delivered, r.status_code, r.url) for r in rows] == [(1, False, None, url)]
    error = rows[0].error or ""
    assert error.startswith("address not allowed: localhost resolves to ") and "127.0.0.1 (loopback)" in error, error
    assert hook.seen == []
    (warning,) = deliver_warnings(caplog)
    assert warning.startswith("webhook refused: address not allowed: localhost resolves to "), warning
    assert "http://localhost/…" in warning and a.id in warning
    for bit in ("secret-hook", TOKEN, port):
        assert bit not in caplog.text

    loopback = AddressPolicy(allowed=(ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128")))
    b = alert()
    await deliver(deliverers(max_attempts=3, policy=loopback), b, url, within=10.0)
    assert [(r.attempt, r.delivered, r.status_code) for r in await deliveries(sessions, b.id)] == [(1, True, 200)]
    assert [name for name, _, _ in hook.seen] == ["secret-hook"]


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://127.0.0.1:15432/", "127.0.0.1 (loopback)"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 (link-local, cloud metadata)"),
        ("http://10.0.0.5/internal-admin", "10.0.0.5 (private)"),
        ("http://[::1]/", "::1 (loopback)"),
        ("http://[::ffff:169.254.169.254]/", "(169.254.169.254: link-local, cloud metadata)"),
        ("http://0.0.0.0:15432/", "0.0.0.0 (unspecified)"),
        ("http://100.100.100.200/latest/meta-data/", "100.100.100.200 (shared, cloud metadata)"),
    ],
)
async def test_an_internal_address_is_refused_when_connecting(
    url: str, refused: str, deliverers: Callable[..., Deliverer], sessions: Any
) -> None:
    """The examples of the review, as stored (a rule saved before the check, or written
    into the database directly): refused before any connection, one failed attempt."""
    a = alert()
    await deliver(deliverers(policy=AddressPolicy()), a, url, within=10.0)
    rows = await deliveries(sessions, a.id)
    assert [(r.attempt, r.delivered, r.status_code) for r in rows] == [(1, False, None)]
    assert (rows[0].error or "").startswith("address not allowed: ") and refused in (rows[0].error or ""), rows[0].error


def redirect_to(target: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter, RawEndpoint], Awaitable[None]]:
    """An answer: 302 to ``target``."""
    head = f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n".encode()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ep: RawEndpoint) -> None:
        await ep.write(reader, writer, head)

    return answer


async def test_a_redirect_is_not_followed(
    deliverers: Callable[..., Deliverer],
    raw_endpoint: Callable[..., Awaitable[RawEndpoint]],
    hook: Hook,
    sessions: Any,
) -> None:
    """A receiver answering 302 cannot send the alert (and the guard's checks) elsewhere:
    the redirect is a failed attempt and its target sees nothing. (Pins what deliver.py
    did before the guard too: httpx follows no redirect unless told to.)"""
    ep = await raw_endpoint(redirect_to(hook.url("elsewhere")))
    a = alert()
    await deliver(deliverers(max_attempts=1), a, ep.url, within=10.0)
    rows = await deliveries(sessions, a.id)
    assert [(r.attempt, r.delivered, r.status_code, r.error) for r in rows] == [(1, False, 302, "HTTP 302")]
    assert hook.seen == []


@pytest.fixture
async def stored(sessions: Any, unique: str) -> AsyncIterator[Callable[[list[dict[str, str]]], Awaitable[str]]]:
    """A fired alert in the database (for :func:`notify_new` to claim), its rule sending
    to ``channels``; both deleted after the test. Stored resolved and announced, so that
    no alerter's sweep or outbox touches it: only its webhooks are pending."""
    rules: list[int] = []

    async def store(channels: list[dict[str, str]]) -> str:
        entity = f"HOOK{unique}"
        rule_id = await add_rule(sessions, f"deliver-{unique}-{len(rules)}", entity, channels=channels)
        rules.append(rule_id)
        alert_id = f"al-{uuid.uuid4().hex[:12]}"
        async with sessions.begin() as s:
            s.add(
                Alert(
                    id=alert_id,
                    rule_id=rule_id,
                    entity=entity,
                    stream="news",
                    episode=AT,
                    status="resolved",
                    severity="critical",
                    window_start=AT,
                    window_end=AT,
                    fired_at=AT,
                    resolved_at=AT,
                    explanation={"share": 0.62},
                    model_version="v1",
                    announced_status="resolved",
                )
            )
        return alert_id

    yield store
    async with sessions.begin() as s:
        await s.execute(delete(AlertRule).where(AlertRule.id.in_(rules)))  # and their alerts (cascade)


async def stored_alert(sessions: Any, alert_id: str) -> Alert:
    async with sessions() as s:
        return (await s.execute(select(Alert).where(Alert.id == alert_id))).scalar_one()


async def claim_aged(sessions: Any, alert_id: str, seconds: float) -> None:
    """Make the alert's claim ``seconds`` old: the lease runs out without the test waiting it out."""
    async with sessions.begin() as s:
        await s.execute(
            update(Alert).where(Alert.id == alert_id).values(notify_claimed_at=func.now() - timedelta(seconds=seconds))
        )


async def test_stopping_during_retries_leaves_the_alert_to_the_next_claim(
    deliverers: Callable[..., Deliverer], hook: Hook, sessions: Any, stored: Callable[..., Awaitable[str]]
) -> None:
    """The receiver fails; the deliverer is stopped (drain, as the alerter does on SIGTERM)
    between two attempts. Before, the delivery went on against the closed client: each
    later attempt failed at once ("the client has been closed"), was recorded as one, and
    the last marked the alert notified: never delivered, never taken over. Now it is
    cancelled: no further attempt is recorded, the alert is not notified, and once the
    claim's lease has run out the next alerter delivers it."""
    hook.statuses["stopped"] = 500
    alert_id = await stored([{"type": "webhook", "url": hook.url("stopped"), "format": "json"}])
    first = deliverers(max_attempts=3, backoff_s=0.3)
    assert await notify_new(sessions, first) >= 1
    await wait_until(lambda: deliveries(sessions, alert_id), timeout=10)  # the first attempt failed
    await first.drain(timeout_s=0.1)
    await asyncio.sleep(2.0)  # the old deliverer made attempts 2 and 3 (at 0.3 s and 0.9 s) and was done
    rows = await deliveries(sessions, alert_id)
    assert [(r.attempt, r.delivered, r.status_code, r.error) for r in rows] == [(1, False, 500, "HTTP 500")]
    assert not (await stored_alert(sessions, alert_id)).notified
    assert first.in_flight == frozenset()

    hook.statuses["stopped"] = 200
    await claim_aged(sessions, alert_id, first.lease_s + 1)
    second = deliverers()
    assert await notify_new(sessions, second) >= 1
    await wait_until(lambda: _notified(sessions, alert_id), timeout=10)
    rows = await deliveries(sessions, alert_id)
    assert [(r.attempt, r.delivered, r.status_code) for r in rows] == [(1, False, 500), (1, True, 200)]
    assert [json.loads(body)["id"] for name, body, _ in hook.seen if name == "stopped"] == [alert_id, alert_id]


async def _notified(sessions: Any, alert_id: str) -> bool:
    return (await stored_alert(sessions, alert_id)).notified


async def test_an_alert_still_being_delivered_is_not_claimed_again(
    deliverers: Callable[..., Deliverer], hook: Hook, sessions: Any, stored: Callable[..., Awaitable[str]]
) -> None:
    """The claim outlives its lease while its alerter still retries (the database stalled;
    the lease was computed from settings another alerter does not share). Before, the
    next pass claimed the alert again and posted it a second time, concurrently. Now the
    alerter skips what it is delivering and renews its claim, so another alerter, with a
    shorter lease of its own, does not take it over either."""
    hook.statuses["busy"] = 500
    alert_id = await stored([{"type": "webhook", "url": hook.url("busy"), "format": "json"}])
    first = deliverers(max_attempts=3, backoff_s=1.0)
    assert await notify_new(sessions, first) >= 1
    await wait_until(lambda: deliveries(sessions, alert_id), timeout=10)  # the first attempt failed
    await claim_aged(sessions, alert_id, first.lease_s + 1)
    await notify_new(sessions, first)
    other = deliverers(max_attempts=1)
    assert other.lease_s < first.lease_s
    await notify_new(sessions, other)
    await asyncio.sleep(0.5)  # within the 1 s backoff: a second post would have come by now
    assert [name for name, _, _ in hook.seen] == ["busy"]
    assert alert_id in first.in_flight
    claimed = (await stored_alert(sessions, alert_id)).notify_claimed_at
    assert claimed is not None and claimed > datetime.now(UTC) - timedelta(seconds=30)


async def test_a_url_sent_in_two_formats_gets_both_after_a_takeover(
    deliverers: Callable[..., Deliverer], hook: Hook, sessions: Any
) -> None:
    """A rule may send one URL both JSON and Slack bodies. The JSON one was delivered, then
    the alerter stopped before the Slack one; the alerter taking over skipped the URL as
    delivered and the Slack body was lost. The log records (url, format) since 0015: the
    Slack one is sent, the JSON one, delivered, is not sent again (before 0015 both were)."""
    url, a = hook.url("both"), alert()
    await deliver(deliverers(), a, url, within=10.0, fmt="json")
    done = asyncio.Event()

    async def mark() -> None:
        done.set()

    deliverers().submit(a, [{"url": url, "format": "json"}, {"url": url, "format": "slack"}], mark)
    await asyncio.wait_for(done.wait(), 10.0)
    bodies = [json.loads(body) for _, body, _ in hook.seen]
    kinds = ["slack" if "text" in b else "json" for b in bodies]
    assert kinds == ["json", "slack"], kinds
    assert all(a.id in (b["text"] if "text" in b else b["id"]) for b in bodies)


async def test_a_channel_refused_for_good_is_not_posted_again_after_a_takeover(
    deliverers: Callable[..., Deliverer], hook: Hook, sessions: Any, stored: Callable[..., Awaitable[str]]
) -> None:
    """One channel answers 404 (a permanent refusal: not retried), another 500; the
    alerter stops between the 500's attempts. Before, the alerter taking the claim over
    skipped delivered channels only and posted the refused one once more; now it is done
    (undelivered, for good) and only the failing one is retried, and delivered."""
    hook.statuses |= {"refused": 404, "flaky": 500}
    refused, flaky = hook.url("refused"), hook.url("flaky")
    alert_id = await stored([{"type": "webhook", "url": u, "format": "json"} for u in (refused, flaky)])
    first = deliverers(max_attempts=3, backoff_s=5.0)
    assert await notify_new(sessions, first) >= 1

    async def both_tried() -> bool:
        return {r.url for r in await deliveries(sessions, alert_id)} == {refused, flaky}

    await wait_until(both_tried, timeout=10)
    await first.drain(timeout_s=0.1)  # stopped within the 5 s backoff: the 500 is not done
    assert not (await stored_alert(sessions, alert_id)).notified

    hook.statuses["flaky"] = 200
    await claim_aged(sessions, alert_id, first.lease_s + 1)
    second = deliverers()
    assert await notify_new(sessions, second) >= 1
    await wait_until(lambda: _notified(sessions, alert_id), timeout=10)
    assert sorted(name for name, _, _ in hook.seen) == ["flaky", "flaky", "refused"]
    rows = await deliveries(sessions, alert_id)
    assert sorted((r.url == flaky, r.attempt, r.delivered, r.status_code) for r in rows) == [
        (False, 1, False, 404),
        (True, 1, False, 500),
        (True, 1, True, 200),
    ]
