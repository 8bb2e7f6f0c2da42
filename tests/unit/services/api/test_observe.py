"""Request metrics keep their label values bounded whatever a client sends."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from starlette.types import Message, Receive, Scope, Send

from services.api import observe


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 405, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def test_made_up_methods_share_one_label_value(monkeypatch: Any) -> None:
    registry = CollectorRegistry()
    metrics = observe.http_metrics.__wrapped__(registry)
    monkeypatch.setattr(observe, "http_metrics", lambda: metrics)
    app = observe.RequestMetrics(_answer)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(_message: Message) -> None:
        return None

    for method in ["GET", "POST", *(f"X{i}" for i in range(300))]:
        await app({"type": "http", "method": method, "path": "/healthz"}, receive, send)
    methods = {
        sample.labels["method"]
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "tonewatch_api_requests_total"
    }
    assert methods == {"GET", "POST", "other"}
