"""HTTP API and dashboard (composition root).

``build_app(settings, deps)`` wires routes, error format, limits and metrics;
``main()`` is the entrypoint ``tonewatch run api`` calls: it reads the settings,
waits for PostgreSQL, Kafka and Redis, and serves with uvicorn until stopped.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import fastapi.routing
import uvicorn
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from services.alerter.config import WebhookNetworkSettings
from services.alerter.netguard import AddressPolicy
from services.api import (
    routes_alerts,
    routes_entities,
    routes_events,
    routes_ops,
    routes_routing,
    routes_rules,
    routes_trends,
)
from services.api.alert_feed import AlertFeed
from services.api.auth import KeyBeforeBody, required_scope
from services.api.config import ApiSettings
from services.api.dashboard import install_dashboard
from services.api.deps import SERVICE, Deps, make_deps
from services.api.errors import (
    BodyLimitMiddleware,
    document_errors_in_openapi,
    document_key_errors_in_openapi,
    error_responses,
    install_error_handlers,
    refuse_nul_in_url,
)
from services.api.observe import RequestMetrics, http_metrics
from shared import logs
from shared.metrics import metrics
from shared.signals import raise_system_exit
from shared.startup import kafka_dependency, postgres_dependency, redis_dependency, refuse_unmigrated, wait_for

log = logging.getLogger("tonewatch.api")
DESCRIPTION = """Trends, alerts, watchlist, rules, routing volumes and ingest of tonewatch.

Reads are open unless `TW_API_REQUIRE_KEY_FOR_READS=true`; writes need an API key
(`Authorization: Bearer tw_...` or `X-API-Key`) with the `write` scope, rules and
keys the `admin` scope. Every error reads `{"error": {"code", "message", "details"}}`."""


def build_app(settings: ApiSettings, deps: Deps, webhook_policy: AddressPolicy | None = None) -> FastAPI:
    """The ASGI application. ``deps`` belong to the caller, who closes them. Rules are
    saved under ``webhook_policy`` (default: webhooks reach no internal network)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.feed.stop()

    app = FastAPI(
        title="tonewatch API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(refuse_nul_in_url)],
    )
    app.state.settings = settings
    app.state.deps = deps
    app.state.webhook_policy = webhook_policy or AddressPolicy()
    app.state.feed = AlertFeed(deps.sessions, settings.sse_poll_interval_s)
    install_error_handlers(app)
    app.add_middleware(KeyBeforeBody, api=app)  # a write without a key: 401 before its body is parsed
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(RequestMetrics)
    app.include_router(routes_ops.router)  # health, readiness, metrics, status: answer without PostgreSQL
    database_down = error_responses({503: "PostgreSQL (or another backing service) is unreachable; retry later"})
    for module in (routes_trends, routes_entities, routes_alerts, routes_rules, routes_routing, routes_events):
        app.include_router(module.router, responses=database_down)
    install_dashboard(app)
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = document_key_errors_in_openapi(plain_openapi(), key_scopes(app, settings))
            app.openapi_schema = document_errors_in_openapi(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    metrics()  # register the shared tonewatch metrics so /metrics always lists them
    http_metrics()
    return app


def key_scopes(app: FastAPI, settings: ApiSettings) -> dict[tuple[str, str], str]:
    """``(path, lower-case method)`` -> the scope a key needs, for each documented
    operation that needs a key under ``settings`` (reads only when they require one)."""
    scopes: dict[tuple[str, str], str] = {}
    # Walk the routes as FastAPI's own get_openapi does: recent versions keep an included
    # router as one entry of app.routes, iter_route_contexts yields its routes (with the
    # dependencies it was included with); older versions list the APIRoutes themselves.
    routes: Iterable[Any] = getattr(fastapi.routing, "iter_route_contexts", iter)(app.routes)
    for route in routes:
        if not isinstance(getattr(route, "original_route", route), APIRoute) or not route.include_in_schema:
            continue
        scope = required_scope(route.dependant, require_key_for_reads=settings.require_key_for_reads)
        if scope is not None:
            scopes.update({(route.path_format, method.lower()): scope for method in route.methods})
    return scopes


class _Server(uvicorn.Server):
    """uvicorn, ending the live alert streams first on SIGINT/SIGTERM: they never
    finish by themselves and would otherwise hold the graceful shutdown."""

    def __init__(self, config: uvicorn.Config, feed: AlertFeed) -> None:
        super().__init__(config)
        self._feed = feed
        self._loop = asyncio.get_running_loop()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._loop.call_soon_threadsafe(self._feed.end_subscriptions)
        super().handle_exit(sig, frame)


async def serve(settings: ApiSettings, webhook_policy: AddressPolicy | None = None) -> int:
    """Wait for the dependencies, then serve until SIGINT/SIGTERM. Returns an exit code:
    0 after a clean stop, 1 when the server could not start (e.g. the port is taken)."""
    await wait_for(
        [postgres_dependency(settings.postgres), kafka_dependency(settings.kafka), redis_dependency(settings.redis)],
        deadline_s=settings.startup_deadline_s,
    )
    deps = make_deps(settings)
    try:
        app = build_app(settings, deps, webhook_policy)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=5,
            proxy_headers=False,
            server_header=False,
        )
        server = _Server(config, app.state.feed)
        log.info("API and dashboard on http://%s:%d/", settings.host, settings.port)
        # uvicorn re-raises the stop signal to the handler it replaced, after its graceful shutdown.
        previous = signal.signal(signal.SIGTERM, raise_system_exit)
        try:
            await server.serve()
        except SystemExit:
            if server.started:  # a stop signal re-raised by uvicorn to the previous handler
                raise
            log.error("the API could not start on %s:%d", settings.host, settings.port)  # e.g. port taken
            return 1
        finally:
            signal.signal(signal.SIGTERM, previous)
        return 0 if server.started else 1
    finally:
        await deps.aclose()


def main() -> int:
    """Entrypoint: settings from the environment (``TW_*``), the alerter's allowed webhook
    networks (``TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS``) included."""
    settings = ApiSettings()
    webhook_policy = WebhookNetworkSettings().webhook_policy()
    logs.configure(settings.log_level, SERVICE)
    if refuse_unmigrated(SERVICE, settings.postgres, deadline_s=settings.startup_deadline_s):
        return 2
    return asyncio.run(serve(settings, webhook_policy))
