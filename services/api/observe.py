"""HTTP request metrics of the API (route template, method, status; latency)."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class HttpMetrics:
    requests: Counter
    latency: Histogram


@functools.cache
def http_metrics(registry: CollectorRegistry = REGISTRY) -> HttpMetrics:
    """The API's request metrics (one set per registry, created on first use)."""
    return HttpMetrics(
        requests=Counter(
            "tonewatch_api_requests", "HTTP requests answered", ["method", "route", "status"], registry=registry
        ),
        latency=Histogram(
            "tonewatch_api_request_seconds",
            "HTTP request latency until the response starts",
            ["method", "route"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        ),
    )


class RequestMetrics:
    """Count requests by route template (not raw path, to keep label cardinality bounded)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        m = http_metrics()

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                m.latency.labels(_method(scope), _route(scope)).observe(time.perf_counter() - start)
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            m.requests.labels(_method(scope), _route(scope), str(status)).inc()


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})


def _method(scope: Scope) -> str:
    """The request method, or ``other``: the HTTP server accepts any token as a method,
    and each new label value would be a new series, for anyone who can reach the port."""
    method = str(scope.get("method", ""))
    return method if method in METHODS else "other"


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
