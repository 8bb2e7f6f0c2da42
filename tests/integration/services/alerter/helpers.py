"""Helpers shared by the alerter tests (``from integration.services.alerter.helpers import ...``);
the fixtures are in conftest.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from services_proc import log_tail

from shared.events import AlertEvent

AT = datetime(2031, 3, 9, 14, 30, tzinfo=UTC)


def alert() -> AlertEvent:
    """A new open alert event (a fresh id each call), fired at ``AT``."""
    return AlertEvent(
        id=f"al-{uuid.uuid4().hex[:12]}",
        rule_id=7,
        rule_name="watchlist-negative-spike",
        entity="ACME",
        stream="news",
        severity="critical",
        status="open",
        window_start=AT,
        window_end=AT,
        fired_at=AT,
        explanation={"share": 0.62},
    )


@contextlib.contextmanager
def showing_logs(log_dir: Path, *names: str) -> Iterator[None]:
    """A failed assertion (a ``wait_until`` that ran out) in the block fails the test with
    the tails of these services' logs instead."""
    try:
        yield
    except AssertionError:
        raise AssertionError("".join(log_tail(log_dir, name) for name in names)) from None


class Receiver:
    """Answers ``/<name>`` with ``statuses[name]`` (200 by default); ``/slow-<x>`` reads
    the request, records it, then answers only once ``release`` is set: after the
    deliverer's timeout (the request was handled, the answer came late)."""

    def __init__(self) -> None:
        self.statuses: dict[str, int] = {}
        self.seen: list[tuple[str, bytes, dict[str, str]]] = []
        self.release = asyncio.Event()
        self.base = ""

    def url(self, name: str) -> str:
        return f"{self.base}/{name}?token=s3cr3t"

    def posts(self, name: str) -> list[tuple[bytes, dict[str, str]]]:
        return [(body, headers) for n, body, headers in self.seen if n == name]

    def sent(self, name: str) -> list[tuple[dict[str, Any], str]]:
        """The JSON bodies posted to ``/<name>``, each with its Idempotency-Key."""
        return [(json.loads(body), headers["Idempotency-Key"]) for body, headers in self.posts(name)]

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.seen.append((name, await request.read(), dict(request.headers)))
        if name.startswith("slow"):
            await self.release.wait()
        return web.Response(status=self.statuses.get(name, 200))
