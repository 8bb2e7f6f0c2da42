"""Alerter scenario helpers on the real stack: scored events -> aggregator -> NOTIFY ->
alerter -> alerts table, ``alerts`` topic and webhooks (a real local HTTP server)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network
from typing import Any

from aiohttp import web

from services.alerter import repo
from services.alerter.netguard import AddressPolicy
from services.alerter.rules import RuleSpec, Scope, rule_context
from shared.events import Score, ScoredEvent
from shared.kafka.clients import ensure_topics, make_producer

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
# The local webhook receivers listen on 127.0.0.1: the tests allow it, as an operator would
# (TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS); webhooks reach no internal network by default.
LOCAL_RECEIVERS = "127.0.0.1/32"
LOCAL_POLICY = AddressPolicy(allowed=(IPv4Network(LOCAL_RECEIVERS),))
SPIKE_WORDS = ["fraud probe", "accounting scandal", "fraud charges", "collapse fears"]


@dataclass
class Hook:
    """A local webhook receiver: status codes to answer, requests seen."""

    statuses: dict[str, int] = field(default_factory=dict)
    seen: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    base: str = ""

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"


def scored(entity: str, i: int, t: datetime, negative: bool, text: str) -> ScoredEvent:
    strong = "quiet" not in text
    probs = {"negative": 0.9 if strong else 0.6, "neutral": 0.05 if strong else 0.35, "positive": 0.05}
    if not negative:
        probs = {"negative": 0.05, "neutral": 0.85, "positive": 0.1}
    return ScoredEvent(
        id=f"{entity}-{i}",
        stream="news",
        event_time=t,
        received_time=t,
        text=text,
        entities=[entity, "_all"],
        sentiment=Score(
            label="negative" if negative else "neutral", confidence=0.9, probs=probs, model="m", version="v1"
        ),
    )


def timeline(
    entity: str, minutes: int, spikes: list[tuple[int, int]], per_minute: int = 6, spike_per_minute: int = 8
) -> list[ScoredEvent]:
    """Steady news (1 of 6 negative per minute) with negative spikes in the given minute ranges."""
    out, i = [], 0
    for m in range(minutes):
        t = T0 + timedelta(minutes=m)
        in_spike = any(a <= m < b for a, b in spikes)
        for k in range(spike_per_minute if in_spike else per_minute):
            neg = (k < spike_per_minute - 1) if in_spike else (k == 0)
            text = (
                f"{entity} shares hit by {SPIKE_WORDS[k % 4]}"
                if in_spike and neg
                else f"{entity} {'slips' if neg else 'holds'} in quiet trading {m}-{k}"
            )
            out.append(scored(entity, i, t + timedelta(seconds=k), neg, text))
            i += 1
    return out


async def produce(kafka: Any, topic: str, events: list[ScoredEvent]) -> None:
    await ensure_topics(kafka, [topic])
    producer = make_producer(kafka, client_id="test")
    await producer.start()
    try:
        futures = [await producer.send(topic, e.to_bytes(), key=e.entities[0].encode()) for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def add_rule(
    sessions: Any, name: str, entity: str, channels: list[dict[str, str]] | None = None, **overrides: Any
) -> int:
    spec = RuleSpec.model_validate(
        {
            "name": name,
            "scope": Scope(entities=[entity]),
            "window_s": 300,
            "min_volume": 10,
            "abs_threshold": 0.5,
            "z_threshold": 2.0,
            "cooldown_s": 1800,
            "resolve_after_s": 600,
            "channels": channels or [],
            **overrides,
        },
        context=rule_context(LOCAL_POLICY),
    )
    async with sessions.begin() as s:
        rule = await repo.create_rule(s, spec)
        return rule.id


@contextlib.asynccontextmanager
async def posts_served(handle: Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[str]:
    """A real local HTTP receiver: ``handle`` answers every POST to ``/<name>`` on
    127.0.0.1 (a free port); yields the base URL."""
    app = web.Application()
    app.router.add_post("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()
