"""Webhook delivery: signed JSON (generic or Slack-compatible), retries with
exponential backoff, a delivery log. Runs in its own tasks so a slow or failing
endpoint never delays detection or other channels.

Signature: header ``X-Tonewatch-Signature: t=<unix>,v1=<hex>`` where
``hex = HMAC-SHA256(secret, f"{t}.{body}")``; receivers should reject stale ``t``.

A receiver may see one notification more than once (an answer after the timeout, a lost
answer, a takeover after a crash): every request carries ``Idempotency-Key``, derived from
the alert's id and the channel (URL and format) only, so the same on every attempt, after a
restart and from another alerter, and different for each alert and channel. Not from the
status the body carries: a takeover may find the alert resolved since the first post (which
said ``open``) and must not get past the receiver's dedupe (an alert's webhooks fire once).
The signature covers the timestamp and the body, not the key.
The key is a header only: a generic JSON body stays exactly the alert event (``alert.v1``,
whose schema allows no other field) and a Slack body Slack's ``{"text": ...}``.

A permanent client error (:data:`PERMANENT_STATUSES`: 400, 401, 403, 404, 405, 410, 413,
422) is recorded and not retried, nor posted again when another alerter takes the alert
over or the alerter restarts: the channel is done for that alert, undelivered. 408, 425,
429, any other status, 5xx, timeouts and connection errors are retried, after a takeover
too: ``max_attempts`` within one pass, then (when :meth:`Deliverer.submit` is given
``retry``) by later passes, each after a wait as long as the channel has been failing (at
most :data:`MAX_BACKOFF_S`), until ``give_up_s`` after the channel's first recorded attempt:
then it is given up (an ERROR and ``tonewatch_webhook_give_ups``) and the alert is done.
A 429 or 503 with ``Retry-After`` (seconds or an HTTP-date; at most :data:`MAX_BACKOFF_S`)
makes the next attempt wait at least that long; a wait longer than the pass has left ends
the pass, and the later pass comes no sooner (:meth:`Deliverer._deliver_channel`).
A channel is a URL and a format: the delivery log records both (migration 0015), so a URL
a rule sends in two formats has each delivered, refused, aged and given up on its own, and
the one delivered is not posted again while the other is retried (:func:`pending`).

Webhooks reach public addresses only, unless an operator allowed an internal network
(:mod:`services.alerter.netguard`): the address is checked when connecting, a refused one
is one failed attempt, not retried. Redirects are not followed (a 3xx is a failed attempt).

A webhook URL has at most :data:`PER_URL_CONNECTIONS` requests open at once, and a host
(scheme, host and port) :data:`PER_HOST_CONNECTIONS`: a slow receiver cannot take the
whole connection pool, which is large enough (:data:`MAX_CONNECTIONS`) that only those
per-receiver limits bind, so deliveries to other receivers never wait for a connection
inside their attempt's timeout. A delivery waits for its slots before that timeout starts
(:meth:`Deliverer._slot`); one whose claim has not been renewed for half its lease
meanwhile (the alerter lost the database) is abandoned unsent, since another alerter may
have taken it over (:meth:`Deliverer.claim_renewed`).

Stopping (:meth:`Deliverer.drain`) waits a while for deliveries under way, then cancels the
rest: a cancelled delivery records no attempt and does not mark the alert done, so the
claim's lease runs out and another alerter (or this one, restarted) takes it over.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import json
import logging
import re
import time
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from datetime import UTC
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter.config import DEFAULT_WEBHOOK_GIVE_UP_S, MAX_BACKOFF_S
from services.alerter.netguard import AddressNotAllowed, AddressPolicy, GuardedBackend, guarded_transport
from shared.db.models import WebhookDelivery
from shared.events import AlertEvent
from shared.logs import mask_url
from shared.metrics import metrics

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Tonewatch-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 413, 422})
"""Answers a retry would get again: the request is wrong for this receiver, or the
receiver is gone. 408, 425 and 429 (try again later) are not among them. A channel with
a recorded attempt answered with one of them is done for that alert (:meth:`Deliverer._done`)."""
DB_WRITE_S = 5.0
"""The longest one database step of a delivery may take (reading the channels already
done, recording an attempt, ``done``); a slower one is given up. The lease counts
it for every step, so a claim cannot run out while its alerter waits on the database
(a pool checkout alone may wait 30 s)."""
GAVE_UP_ATTEMPT = 0
"""The ``attempt`` of the delivery log's row that records a channel given up (it failed
transiently for ``give_up_s``): done for that alert, like a delivered or refused one, so
a later pass for the alert's other channels does not post it again."""
PER_URL_CONNECTIONS = 10
"""The most requests open at once to one webhook URL. Without a limit, alerts to one slow
receiver (100+ in flight, each answered only after its timeout) took every pooled
connection, and deliveries to healthy receivers waited for the pool inside their own
attempt's timeout: they failed (retried, perhaps given up) for another receiver's
slowness. Per URL, not per host: one gateway (``hooks.slack.com``) serves many teams'
webhooks, and one team's hanging path must not hold up the others'."""
PER_HOST_CONNECTIONS = 100
"""The most requests open at once to one host (scheme, host and port), over all its
URLs: many slow paths of one gateway still leave the pool to other receivers."""
MAX_CONNECTIONS = 500
"""The shared pool's size, and the most requests open at once in all. A delivery takes
one of these slots, as it takes its receiver's, before its attempt's timeout starts, so
the pool itself never makes an attempt wait: with 50 slow receivers at once, deliveries
are delayed, not failed. Above :data:`PER_HOST_CONNECTIONS` (it is per-receiver
limits that bind), and room left under the common soft limit of 1024 file descriptors
for the database, Kafka and Redis connections."""


class Claims(frozenset[str]):
    """The alerts a deliverer is delivering (a set of their ids, :attr:`Deliverer.in_flight`),
    each with the token of the claim it delivers under (:attr:`tokens`; None for an alert
    submitted without one). The renewal (:func:`services.alerter.publish.renew_claims`)
    extends those claims only: one let go since (a retry scheduled for later) or taken
    over by another alerter is left as it is. A set, so the renew loop passes it on as it
    always did."""

    tokens: Mapping[str, str | None]

    def __new__(cls, tokens: Mapping[str, str | None]) -> Claims:
        claims = super().__new__(cls, tokens)
        claims.tokens = MappingProxyType(dict(tokens))
        return claims


class ClaimLapsed(Exception):
    """An attempt not made: the alert's claim went unrenewed for half its lease."""


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, body: bytes, header: str, *, tolerance_s: int = 300, now: float | None = None) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s``. Any
    malformed header, a non-ASCII one included (``compare_digest`` raises on those), is
    False: a receiver must not turn a crafted header into an error; so is a ``t`` too
    large for a float (400 digits: the subtraction overflows). ``now``: the time to judge
    ``t`` by (default: the clock); 0 is a time like any other, not "not given"."""
    if not header.isascii():
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    try:
        stale = abs((time.time() if now is None else now) - ts) > tolerance_s
    except OverflowError:
        return False
    if stale:
        return False
    return hmac.compare_digest(sign(secret, body, ts), header)


_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")


def slack_text(text: object) -> str:
    """``text`` made safe inside a Slack message: ``&``, ``<`` and ``>`` escaped as Slack
    requires (so no ``<!channel>`` mention, ``<url|label>`` link or ``<@user>`` ping
    comes from it) and line breaks turned into spaces (so it stays on its line, in its quote)."""
    escaped = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _LINE_BREAKS.sub(" ", escaped)


def idempotency_key(alert: AlertEvent, url: str, fmt: str) -> str:
    """The key a receiver drops repeats by: a digest of the alert's id, the channel's
    format and URL. Derived, never random, so every attempt, a takeover and a restarted
    alerter send the same key; not from the alert's status, which a takeover may find
    changed (one alert, one webhook per channel); the URL only as a digest (it is a
    credential). The digest is the one earlier versions sent for an ``open`` alert (they
    digested its status too), so a takeover across an upgrade sends the same key."""
    parts = ("tonewatch-webhook-v1", alert.id, "open", fmt, url)
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


SLACK_TERM_CHARS = 50
"""The most characters of one term a Slack message shows (cut before escaping, with
``…``): a term is one word of a text, which may be thousands of characters long."""
SLACK_TEXT_CHARS = 3500
"""The most characters of a Slack message's text: six 4,000-character terms made a
27,000-character message, past what Slack shows (it truncates long text, or refuses it),
and the last line, the alert's id, is the one that says where the rest is."""
_TERMS_LEAD = "what the negative news is about: "


def _slack_term(term: object) -> str:
    """One term for a Slack message: at most :data:`SLACK_TERM_CHARS`, then escaped
    (cut first: a cut through an escape would show half of it)."""
    text = str(term)
    return slack_text(text if len(text) <= SLACK_TERM_CHARS else text[: SLACK_TERM_CHARS - 1] + "…")


def _fit_slack(head: list[str], terms: list[str], quotes: list[str], last: str) -> str:
    """The lines joined within :data:`SLACK_TEXT_CHARS`, the last (the alert id) always
    whole: terms go first (from the end, then the line), then quoted headlines (from the
    end), then the head is cut. The terms and headlines are in the stored explanation."""

    def text() -> str:
        shown = [_TERMS_LEAD + ", ".join(terms)] if terms else []
        return "\n".join([*head, *shown, *quotes, last])

    while len(text()) > SLACK_TEXT_CHARS and terms:
        terms = terms[:-1]
    while len(text()) > SLACK_TEXT_CHARS and quotes:
        quotes = quotes[:-1]
    whole = text()
    if len(whole) <= SLACK_TEXT_CHARS:
        return whole
    room = max(SLACK_TEXT_CHARS - len(last) - 2, 0)  # a long entity or rule name: cut the head, "…" marks it
    return _cut_escaped("\n".join(head), room) + "…\n" + last


def _cut_escaped(text: str, room: int) -> str:
    """``text`` (escaped by :func:`slack_text`) cut to at most ``room`` characters, never
    through an escape: a cut at ``room`` alone showed half of one (``&amp;&am…``). An ``&``
    in the last four characters kept without its ``;`` starts one (``&amp;`` is the longest,
    five), so the cut steps back to before it."""
    cut = text[:room]
    start = cut.rfind("&", max(len(cut) - 4, 0))
    return cut[:start] if start != -1 and ";" not in cut[start:] else cut


def payload(alert: AlertEvent, fmt: str) -> dict[str, Any]:
    """The body for ``fmt``: Slack's ``{"text": ...}`` (at most :data:`SLACK_TEXT_CHARS`,
    its last line the alert's id), or the alert event."""
    if fmt == "slack":
        # Entity names, terms and headlines come from the feed: everything from an
        # event goes through slack_text.
        e = alert.explanation
        state = "" if alert.status == "open" else f"[{alert.status.upper()}] "  # over or seen by the time it was sent
        head = [
            f"{state}*{alert.severity.upper()}* negative sentiment spike: *{slack_text(alert.entity)}* "
            f"({slack_text(alert.rule_name)})",
            f"negative share {e.get('share', 0):.0%} vs baseline {e.get('baseline_mean', 0):.0%} "
            f"(z={e.get('z') or 0:.1f}, volume {slack_text(e.get('volume'))})",
        ]
        terms = [t["term"] for t in e.get("top_terms", []) if isinstance(t, dict) and "term" in t][:6]
        quotes = [f"> {slack_text(str(m['text'])[:200])}" for m in e.get("top_messages", [])[:3]]
        alert_id = slack_text(alert.id)
        last = f"alert `{alert_id}`: `tonewatch alerts show {alert_id}` for the whole explanation"
        return {"text": _fit_slack(head, [_slack_term(t) for t in terms], quotes, last)}
    return alert.model_dump(mode="json")


def backoff(first_s: float, retry: int) -> float:
    """The wait before retry ``retry`` (1: after the first attempt): ``first_s`` doubled
    each time, at most :data:`MAX_BACKOFF_S` (the exponent is clamped first: a float
    power overflows past about 2**1023)."""
    return min(first_s * 2.0 ** min(retry - 1, 64), MAX_BACKOFF_S)


RETRY_AFTER_STATUSES = frozenset({429, 503})
"""Answers whose ``Retry-After`` the next attempt waits for: a rate-limited receiver
(Slack answers 429 with ``Retry-After: 30``) retried at the backoff alone got five
requests in 7.5 s, each counting against its limit."""
_DELTA_SECONDS = re.compile(r"[0-9]{1,10}")


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds, at most
    :data:`MAX_BACKOFF_S` (a receiver cannot hold a channel longer than our own backoff
    would): delta-seconds, or an HTTP-date (judged by ``now``, default the clock). None,
    for the usual backoff, when the value cannot be read: negative, fractional, NaN, more
    than 10 digits (centuries: not a wait anyone means), a date in the past, or not a date."""
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return min(float(value), MAX_BACKOFF_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000": an HTTP-date is always UTC
            when = when.replace(tzinfo=UTC)
        wait = when.timestamp() - (time.time() if now is None else now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(wait, MAX_BACKOFF_S) if wait > 0 else None


Channel = tuple[str, str | None]
"""A channel as the delivery log records it: (url, format). The format is None in rows
written before migration 0015 (or by an alerter of that version during a rolling
upgrade), which recorded the URL only."""


def pending(hooks: list[tuple[str, str]], done: set[Channel]) -> list[tuple[str, str]]:
    """The (url, format) channels still to send, given the channels that are done (an
    attempt delivered, refused for good, or given up: :meth:`Deliverer._done`). Each
    format of a URL is done on its own: a rule sending one URL in two formats does not post
    the one delivered again while the other is retried (before 0015 it did: the log had no
    format). A row without a format (``(url, None)``) is read as the version that wrote it
    read it: it settles a URL the alert goes to in one format; one it goes to in several is
    sent again in each, since that row cannot tell which got through or was refused
    (receivers dedupe on the Idempotency-Key; skipping could lose one)."""
    formats: defaultdict[str, set[str]] = defaultdict(set)
    for url, fmt in hooks:
        formats[url].add(fmt)
    return [
        (url, fmt)
        for url, fmt in hooks
        if (url, fmt) not in done and not ((url, None) in done and len(formats[url]) == 1)
    ]


def age(ages: dict[Channel, float], url: str, fmt: str) -> float:
    """Seconds since the channel's first recorded attempt, given :meth:`Deliverer._ages`:
    a row without a format (before 0015) counts for every format of its URL, as that
    version counted it for the URL."""
    return max(ages.get((url, fmt), 0.0), ages.get((url, None), 0.0))


_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_key(url: str) -> str:
    """The host a URL posts to, for :data:`PER_HOST_CONNECTIONS`: its scheme, host
    (as httpx normalises it) and port (the scheme's default when not given). A URL that
    cannot be parsed is its own key: its request fails as before, as a failed attempt."""
    try:
        u = httpx.URL(url)
        return f"{u.scheme}://{u.host}:{_DEFAULT_PORTS.get(u.scheme, 0) if u.port is None else u.port}"
    except (httpx.InvalidURL, ValueError):
        return url


def url_key(url: str) -> str:
    """The webhook URL as the receiver gets it, so that two spellings of one URL count as
    one channel (:func:`services.alerter.rules.channel_key`, :meth:`Deliverer.submit`):
    scheme and host lower-cased, the host's trailing dot and the scheme's default port
    dropped, an empty path given its ``/``, an empty query (``?``) and any fragment (never
    sent) dropped. User and password are kept (they are sent, as ``Authorization``), and so
    are the path and query, as given (a receiver may tell their case apart). A URL that
    cannot be parsed is its own key."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").rstrip("."), parts.port
    except ValueError:
        return url
    userinfo, at, _ = parts.netloc.rpartition("@")
    authority = f"{userinfo}{at}{f'[{host}]' if ':' in host else host}"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        authority += f":{port}"
    return f"{scheme}://{authority}{parts.path or '/'}{'?' + parts.query if parts.query else ''}"


class Deliverer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secret: bytes,
        *,
        timeout_s: float,
        max_attempts: int,
        backoff_s: float,
        policy: AddressPolicy | None = None,
        give_up_s: float = DEFAULT_WEBHOOK_GIVE_UP_S,
    ) -> None:
        self.sessions = sessions
        self.secret = secret
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.give_up_s = give_up_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: dict[str, str | None] = {}  # alert id -> its claim's token
        self.policy = policy or AddressPolicy()
        self._client = httpx.AsyncClient(
            timeout=timeout_s,
            follow_redirects=False,
            transport=guarded_transport(GuardedBackend(self.policy), max_connections=MAX_CONNECTIONS),
        )
        # a receiver's slot lives while a delivery holds or waits for it, then goes
        self._hosts: weakref.WeakValueDictionary[str, asyncio.Semaphore] = weakref.WeakValueDictionary()
        self._urls: weakref.WeakValueDictionary[str, asyncio.Semaphore] = weakref.WeakValueDictionary()
        self._renewed: dict[str, float] = {}  # alert id -> when its claim was last taken or renewed (monotonic)
        self._all = asyncio.Semaphore(MAX_CONNECTIONS)

    @property
    def lease_s(self) -> float:
        """Longest one delivery may take (every attempt timing out, every backoff, every
        database step at its longest), with a margin of 10 s: a claim older than this
        belongs to an alerter that stopped. Finite for any settings: backoffs are capped.
        Waiting for a receiver's slot (:meth:`_slot`) is not in it: the alerter renews
        the claims of the alerts :attr:`in_flight` while they wait."""
        backoffs = sum(backoff(self.backoff_s, retry) for retry in range(1, self.max_attempts))
        # each attempt's record, the read before, the channels' ages and done (or retry) after
        database = (self.max_attempts + 3) * DB_WRITE_S
        return self.max_attempts * self.timeout_s + backoffs + database + 10.0

    @property
    def in_flight(self) -> Claims:
        """The alerts this deliverer is delivering now: their claims are its own, not to
        be taken on a second time however old they are; with their claims' tokens, for
        the renewal."""
        return Claims(self._in_flight)

    def submit(
        self,
        alert: AlertEvent,
        channels: list[dict[str, Any]],
        done: Callable[[], Awaitable[None]] | None = None,
        retry: Callable[[float], Awaitable[None]] | None = None,
        claim: str | None = None,
    ) -> None:
        """Deliver to every webhook channel not yet done for this alert (a resumed claim
        skips those delivered and those permanently refused), each in its own task; then
        await ``done`` once all are done. With ``retry``, a channel out of this pass's
        attempts after transient failures only is not done before ``give_up_s`` after its
        first recorded attempt: ``retry(delay_s)`` is awaited instead of ``done``, for a
        later pass to try again in ``delay_s``. Without it, out of attempts is done.
        Neither is called when stopped before. A channel listed twice (a rule saved before
        duplicates were refused), in one spelling or two (``u``, ``u#x``, ``u?``:
        :func:`url_key`), is sent once, under the spelling listed first. ``claim``: the
        token of the alert's claim, which :attr:`in_flight` gives the renewal."""
        unique: dict[tuple[str, str], tuple[str, str]] = {}
        for ch in channels:
            if ch.get("type", "webhook") == "webhook":
                url, fmt = str(ch["url"]), str(ch.get("format", "json"))
                unique.setdefault((url_key(url), fmt), (url, fmt))
        hooks = list(unique.values())
        self._in_flight[alert.id] = claim
        self._renewed[alert.id] = time.monotonic()  # just claimed
        task = self._spawn(self._deliver_all(alert, hooks, done, retry))
        task.add_done_callback(lambda _: self._forget(alert.id))

    def _forget(self, alert_id: str) -> None:
        self._in_flight.pop(alert_id, None)
        self._renewed.pop(alert_id, None)

    def claim_renewed(self, alert_ids: frozenset[str], at: float) -> None:
        """The claims of ``alert_ids`` were renewed by a statement sent at ``at``
        (:func:`time.monotonic`, taken before it was sent)."""
        for alert_id in alert_ids & self._renewed.keys():
            self._renewed[alert_id] = max(self._renewed[alert_id], at)

    def _lapsed(self, alert_id: str) -> bool:
        """Whether the alert's claim has gone unrenewed for half the lease (its alerter
        cannot reach the database): past the lease another alerter takes it over, so an
        attempt not yet made is not made here."""
        renewed = self._renewed.get(alert_id)
        return renewed is not None and time.monotonic() - renewed > self.lease_s / 2

    async def _deliver_all(
        self,
        alert: AlertEvent,
        hooks: list[tuple[str, str]],
        done: Callable[[], Awaitable[None]] | None,
        retry: Callable[[float], Awaitable[None]] | None,
    ) -> None:
        async with asyncio.timeout(DB_WRITE_S):
            finished = await self._done(alert.id)
        todo = pending(hooks, finished)
        results = await asyncio.gather(
            *(self._deliver_channel(alert, url, fmt) for url, fmt in todo), return_exceptions=True
        )
        if lapsed := [r for r in results if isinstance(r, ClaimLapsed)]:
            log.warning(
                "alert %s: its claim was not renewed for %.0f s (half its lease) while its webhooks waited: "
                "another alerter may have taken it over, so the %d channel(s) not yet sent are left to it",
                alert.id,
                self.lease_s / 2,
                len(lapsed),
            )
            return  # neither done nor retry: the claim runs out, and a pass of any alerter takes it
        for r in results:
            if isinstance(r, BaseException):
                raise r
        failing = [hook for hook, r in zip(todo, results, strict=True) if r is not None]
        asked = max((r for r in results if isinstance(r, float)), default=0.0)  # a receiver's Retry-After
        if failing and retry is not None:
            try:
                async with asyncio.timeout(DB_WRITE_S):
                    ages = await self._ages(alert.id)
            except Exception as exc:  # noqa: BLE001 - the claim's lease runs out: a later pass retries
                log.warning("could not read the webhook attempts of alert %s (%s); retried later", alert.id, exc)
                return
            left = []
            for url, fmt in failing:
                failing_s = age(ages, url, fmt)
                if failing_s < self.give_up_s:
                    left.append(failing_s)
                    continue
                metrics().webhook_give_ups.labels(fmt).inc()
                reason = f"given up after {failing_s:.0f} s of failed attempts (TW_ALERTER_WEBHOOK_GIVE_UP_S)"
                await self._log(alert.id, url, fmt, GAVE_UP_ATTEMPT, None, reason, False)  # done: not posted again
                log.error(
                    "webhook %s (%s): giving up alert %s after %.0f s of failed attempts "
                    "(TW_ALERTER_WEBHOOK_GIVE_UP_S %g s); it is not delivered",
                    mask_url(url),
                    fmt,
                    alert.id,
                    failing_s,
                    self.give_up_s,
                )
            if left:
                # wait as long as it has been failing (doubling), capped, not past the give-up age;
                # at least as long as a receiver asked (Retry-After, at most MAX_BACKOFF_S)
                oldest = max(left)
                delay = max(min(oldest, MAX_BACKOFF_S, self.give_up_s - oldest), self.backoff_s, asked)
                self._in_flight.pop(alert.id, None)  # no claim to renew any more: the wait is the claim's
                async with asyncio.timeout(DB_WRITE_S):
                    await retry(delay)
                return
        if done is not None:
            async with asyncio.timeout(DB_WRITE_S):
                await done()

    async def _ages(self, alert_id: str) -> dict[Channel, float]:
        """Seconds since each channel's first recorded attempt for this alert (database
        clock); read with :func:`age`."""
        async with self.sessions() as s:
            first = func.extract("epoch", func.now() - func.min(WebhookDelivery.created_at))
            q = (
                select(WebhookDelivery.url, WebhookDelivery.format, first)
                .where(WebhookDelivery.alert_id == alert_id)
                .group_by(WebhookDelivery.url, WebhookDelivery.format)
            )
            return {(url, fmt): float(seconds) for url, fmt, seconds in (await s.execute(q)).all()}

    async def _done(self, alert_id: str) -> set[Channel]:
        """The channels (url, format) done for this alert, read with :func:`pending`: an
        attempt delivered, or answered with a permanent refusal
        (:data:`PERMANENT_STATUSES`; recorded as its status code), which another
        attempt, after a takeover or a restart, would only get again. Keyed by alert id, as
        the log is: an alert's webhooks go out once, with its status at the claim, so a
        takeover that finds the alert in another status (resolved since) skips a refused
        channel as it skips a delivered one. Transient failures (5xx, 408/425/429, timeouts,
        connection errors) leave the channel to be retried, until it is given up (a row
        with :data:`GAVE_UP_ATTEMPT`): then it is done too."""
        async with self.sessions() as s:
            q = (
                select(WebhookDelivery.url, WebhookDelivery.format)
                .where(
                    WebhookDelivery.alert_id == alert_id,
                    or_(
                        WebhookDelivery.delivered,
                        WebhookDelivery.status_code.in_(sorted(PERMANENT_STATUSES)),
                        WebhookDelivery.attempt == GAVE_UP_ATTEMPT,
                    ),
                )
                .distinct()
            )
            return {(url, fmt) for url, fmt in (await s.execute(q)).all()}

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _log(
        self, alert_id: str, url: str, fmt: str, attempt: int, code: int | None, error: str | None, ok: bool
    ) -> None:
        """Record one attempt (or a give-up) of the channel (url, format)."""
        try:
            async with asyncio.timeout(DB_WRITE_S), self.sessions.begin() as s:
                s.add(
                    WebhookDelivery(
                        alert_id=alert_id,
                        url=url,
                        format=fmt,
                        attempt=attempt,
                        status_code=code,
                        error=error,
                        delivered=ok,
                    )
                )
        except Exception as exc:  # noqa: BLE001 - logging the log must not stop delivery
            log.warning("could not record webhook delivery: %s: %s", type(exc).__name__, exc)

    @asynccontextmanager
    async def _slot(self, url: str) -> AsyncIterator[None]:
        """Hold one of the URL's :data:`PER_URL_CONNECTIONS` slots, then one of its host's
        :data:`PER_HOST_CONNECTIONS`, then one of the :data:`MAX_CONNECTIONS` in all
        (always in that order: no deadlock; one waiting for its URL holds none of the
        others'). Taken before the attempt's timeout starts, and not counted in it: that
        timeout is the receiver's time to answer one request. Counted, a burst to a
        receiver that answers well within it (50 alerts, each answered in half the
        timeout) would fail every request behind the first ten unsent: failed attempts,
        retries and give-ups of requests never made. The wait is bounded by the receiver's
        own slowness (each request ahead takes at most the timeout); the claim does not run
        out meanwhile, since the alerter renews the claims of the alerts :attr:`in_flight`
        (an attempt whose claim went unrenewed for half the lease is not made:
        :meth:`_lapsed`); :meth:`drain` cancels a delivery waiting here as any other (no
        attempt recorded)."""
        key = host_key(url)
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = asyncio.Semaphore(PER_HOST_CONNECTIONS)
        one = self._urls.get(url)
        if one is None:
            one = self._urls[url] = asyncio.Semaphore(PER_URL_CONNECTIONS)
        async with one, host, self._all:
            yield

    async def _post(self, url: str, body: bytes, headers: dict[str, str], asked: list[float] | None = None) -> int:
        """One attempt's request; the status code. The response body is never read (only
        the status counts, and a receiver may answer with any amount of it): leaving the
        stream unread closes the connection. The wait a 429 or 503 answer asks for
        (:func:`retry_after`), when it can be read, is appended to ``asked``."""
        async with self._client.stream("POST", url, content=body, headers=headers) as resp:
            if asked is not None and resp.status_code in RETRY_AFTER_STATUSES:
                wait = retry_after(resp.headers.get("Retry-After"))
                if wait is not None:
                    asked.append(wait)
            return resp.status_code

    async def _deliver(self, alert: AlertEvent, url: str, fmt: str) -> bool:
        """Deliver to one channel; False when it is out of attempts after transient
        failures only (to be retried later), True when done: delivered, or refused for good
        (a permanent status, an address not allowed, a body that cannot be built)."""
        return await self._deliver_channel(alert, url, fmt) is None

    def _pass_left(self, attempt: int, spent: float) -> float:
        """Seconds this pass may still wait after ``attempt``: the backoffs the lease
        counts for the attempts after it, less what Retry-After waits ``spent`` beyond
        theirs. A receiver asking for longer is retried by a later pass, so the pass (and
        the claim, which counts its waits) never runs past its lease."""
        return sum(backoff(self.backoff_s, retry) for retry in range(attempt, self.max_attempts)) - spent

    async def _deliver_channel(self, alert: AlertEvent, url: str, fmt: str) -> float | None:
        """:meth:`_deliver`: None when the channel is done; else (out of this pass's
        attempts after transient failures) how long its receiver asked to be left alone
        (``Retry-After`` of a 429 or 503, at most :data:`MAX_BACKOFF_S`; 0.0 when it did
        not), for the later pass's delay. Between attempts it waits its backoff, or longer
        when the receiver asked for longer; a wait longer than this pass has left
        (:meth:`_pass_left`) ends the pass at once instead, as out of attempts."""
        shown = mask_url(url)  # the path and query of a webhook URL are credentials
        key = idempotency_key(alert, url, fmt)
        try:
            body = json.dumps(payload(alert, fmt), separators=(",", ":")).encode()
        except Exception as exc:  # noqa: BLE001 - recorded, not retried: it would fail the same way
            reason = f"could not build the {fmt} body: {type(exc).__name__}: {exc}"
            await self._log(alert.id, url, fmt, 1, None, reason, False)
            log.error("webhook %s for alert %s: %s", shown, alert.id, reason)
            return None
        spent = 0.0  # seconds Retry-After waits took beyond the backoff
        for attempt in range(1, self.max_attempts + 1):
            code, error = None, None
            asked: list[float] = []
            try:
                # The receiver's slot first: waiting for it is not the attempt's time.
                async with self._slot(url):
                    if self._lapsed(alert.id):
                        raise ClaimLapsed(alert.id)
                    headers = {  # signed now, not before the wait: receivers reject a stale t
                        "Content-Type": "application/json",
                        SIGNATURE_HEADER: sign(self.secret, body, int(time.time())),
                        IDEMPOTENCY_HEADER: key,
                    }
                    # httpx's timeout bounds each read, not the whole: a receiver sending a
                    # byte a second would hold the attempt (and the claim) open for ever.
                    async with asyncio.timeout(self.timeout_s):
                        code = await self._post(url, body, headers, asked)
                if 200 <= code < 300:
                    await self._log(alert.id, url, fmt, attempt, code, None, True)
                    return None
                if code in PERMANENT_STATUSES:  # the same again on a retry: one failed attempt
                    error = f"HTTP {code}: a permanent refusal, not retried"
                    metrics().webhook_failures.labels(fmt).inc()
                    await self._log(alert.id, url, fmt, attempt, code, error, False)
                    log.error(
                        "webhook %s refused alert %s: %s; fix or remove the rule's channel",
                        shown,
                        alert.id,
                        error,
                    )
                    return None
                error = f"HTTP {code}" + (f" (Retry-After: {asked[0]:g} s)" if asked else "")
            except ClaimLapsed:
                raise  # not an attempt: another alerter may be delivering it (see _deliver_all)
            except TimeoutError:
                error = f"no response within {self.timeout_s:g} s"
            except AddressNotAllowed as exc:  # the same again on a retry: one failed attempt
                error = f"address not allowed: {exc}"
                metrics().webhook_failures.labels(fmt).inc()
                await self._log(alert.id, url, fmt, attempt, None, error, False)
                log.warning(
                    "webhook refused: %s (webhook %s, alert %s); TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS lists the "
                    "internal networks webhooks may reach",
                    error,
                    shown,
                    alert.id,
                )
                return None
            except Exception as exc:  # any failure (an IDNA host, a bug) is a failed attempt, but for one:
                if self._client.is_closed:  # stopped (drain): no attempt was made; the lease hands it over
                    raise
                error = f"{type(exc).__name__}: {exc}".replace(url, shown)
            metrics().webhook_failures.labels(fmt).inc()
            await self._log(alert.id, url, fmt, attempt, code, error, False)
            log.warning(
                "webhook %s attempt %d/%d for alert %s failed: %s", shown, attempt, self.max_attempts, alert.id, error
            )
            wanted = asked[0] if asked else 0.0
            if attempt == self.max_attempts:
                return wanted
            usual = backoff(self.backoff_s, attempt)
            wait = max(usual, wanted)
            if wait > self._pass_left(attempt, spent):
                log.warning(
                    "webhook %s for alert %s: the next attempt's wait (%g s, as its Retry-After asked) is longer than "
                    "this pass has left; a later pass retries it",
                    shown,
                    alert.id,
                    wait,
                )
                return wait
            spent += wait - usual
            await asyncio.sleep(wait)
        return 0.0  # no attempt at all (max_attempts 0): out of attempts

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Stop: wait (at most ``timeout_s``) for the deliveries under way, cancel the rest,
        then close the client. A cancelled delivery records no attempt and never calls
        ``done``: left running, each of its attempts would fail at once on the closed
        client, use up its attempts and mark the alert done, undelivered, for good."""
        if self._tasks:
            _, unfinished = await asyncio.wait(self._tasks, timeout=timeout_s)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        await self._client.aclose()
