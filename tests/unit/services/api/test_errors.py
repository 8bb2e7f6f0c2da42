"""The one error format, request validation, unknown routes, 413 and 500 (no database)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator, ValidationError
from openapi_spec_validator import validate

from services.api import auth
from services.api.app import build_app
from services.api.config import ApiSettings
from services.api.deps import make_deps
from services.api.errors import ApiError, BodyLimitMiddleware, error_body, install_error_handlers

LIMIT = 4096


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["error"] and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and body["error"]["message"]
    return dict(body["error"])


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(max_body_bytes=LIMIT, environment="test")
    deps = make_deps(settings)  # connects to nothing until a query runs
    try:
        app = build_app(settings, deps)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            yield c
    finally:
        await deps.aclose()


def test_error_body_shape() -> None:
    assert error_body("x", "y") == {"error": {"code": "x", "message": "y", "details": []}}


async def test_query_validation_is_422_with_locations(client: httpx.AsyncClient) -> None:
    err = assert_error(
        await client.get("/v1/trends", params={"granularity": "week", "points": 0}), 422, "validation_error"
    )
    locs = [d["loc"] for d in err["details"]]  # type: ignore[attr-defined]
    assert ["query", "granularity"] in locs and ["query", "points"] in locs


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/nope"), 404, "not_found")
    assert_error(await client.put("/healthz"), 405, "method_not_allowed")


async def test_body_over_limit_is_413_by_length_and_by_stream(client: httpx.AsyncClient) -> None:
    err = assert_error(
        await client.post("/v1/events", content=b"x" * (LIMIT + 1), headers={"content-type": "application/json"}),
        413,
        "payload_too_large",
    )
    assert err["details"] == [{"limit_bytes": LIMIT}]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"y" * (LIMIT // 2)

    assert_error(
        await client.post("/v1/events", content=chunks(), headers={"content-type": "application/json"}),
        413,
        "payload_too_large",
    )


async def test_body_at_limit_passes_the_limiter(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/events", content=b"{" + b" " * (LIMIT - 2) + b"}", headers={"content-type": "application/json"}
    )
    assert r.status_code == 401  # past the size check, stopped by auth


async def test_api_error_and_unexpected_error() -> None:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit=LIMIT)

    @app.get("/conflict")
    async def conflict() -> None:
        raise ApiError(409, "busy", code="invalid_transition", details=[{"status": "resolved"}])

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        err = assert_error(await c.get("/conflict"), 409, "invalid_transition")
        assert err["details"] == [{"status": "resolved"}]
        r = await c.get("/boom")
        assert_error(r, 500, "internal_error")
        assert "secret" not in r.text


async def test_the_openapi_document_describes_422_as_the_one_error_document(client: httpx.AsyncClient) -> None:
    """FastAPI documented every 422 as its own {"detail": [...]} shape, which the API
    never sends; clients generated from the document would fail to read errors."""
    doc = (await client.get("/openapi.json")).json()
    answers = [
        op["responses"]["422"] for ops in doc["paths"].values() for op in ops.values() if "422" in op["responses"]
    ]
    assert len(answers) > 10
    assert all(
        a["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorDocument"} for a in answers
    )
    schemas = doc["components"]["schemas"]
    assert not {"HTTPValidationError", "ValidationError"} & set(schemas)  # shapes the API never sends
    assert set(schemas["ErrorDocument"]["properties"]) == {"error"}
    assert set(schemas["ErrorInfo"]["properties"]) == {"code", "message", "details"}
    err = assert_error(await client.get("/v1/trends", params={"points": 0}), 422, "validation_error")
    assert err["details"]


def documented_body(doc: dict[str, Any], path: str, method: str, status: str) -> Draft202012Validator:
    """A validator for the body the OpenAPI document gives an answer (its $refs resolved
    against the document's components)."""
    schema = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return Draft202012Validator({**schema, "components": doc["components"]})


async def test_the_openapi_document_lists_401_and_403_where_a_key_is_needed(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients generated from the document knew only 422 (and 503) as errors: a missing
    key (401) or one without the scope (403) looked undocumented."""
    doc = (await client.get("/openapi.json")).json()
    paths = doc["paths"]
    for path, method, scope in (
        ("/v1/events", "post", "write"),
        ("/v1/entities/{key}", "put", "write"),
        ("/v1/alerts/{alert_id}/ack", "post", "write"),
        ("/v1/rules", "post", "admin"),
        ("/v1/rules/{rule_id}", "delete", "admin"),
    ):
        answers = paths[path][method]["responses"]
        assert {"401", "403"} <= set(answers), (path, method)
        assert f"`{scope}`" in answers["403"]["description"]
        assert "WWW-Authenticate" in answers["401"]["headers"]
    # no key needed: operations, and reads while TW_API_REQUIRE_KEY_FOR_READS is off
    for path, method in (("/healthz", "get"), ("/readyz", "get"), ("/v1/trends", "get"), ("/v1/rules", "get")):
        assert not {"401", "403"} & set(paths[path][method]["responses"]), (path, method)

    r = await client.post("/v1/events", json={"events": []})  # no key
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == 'Bearer realm="tonewatch"'
    documented_body(doc, "/v1/events", "post", "401").validate(r.json())

    reader = auth.KeyInfo(7, "ro", "abcdefgh", ("read",), None, None)

    async def known_read_key(*_: object) -> auth.KeyInfo:
        return reader

    monkeypatch.setattr(auth, "verify_key", known_read_key)
    r = await client.post("/v1/events", json={"events": []}, headers={"X-API-Key": "tw_abcdefgh_" + "a" * 43})
    assert_error(r, 403, "forbidden")
    documented_body(doc, "/v1/events", "post", "403").validate(r.json())
    with pytest.raises(ValidationError, match="is a required property"):  # FastAPI's own shape is not ours
        documented_body(doc, "/v1/events", "post", "401").validate({"detail": "Not authenticated"})


async def test_reads_list_401_and_403_when_they_require_a_key() -> None:
    settings = ApiSettings(environment="test", require_key_for_reads=True)
    deps = make_deps(settings)
    try:
        app = build_app(settings, deps)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            doc = (await c.get("/openapi.json")).json()
            r = await c.get("/v1/trends")
    finally:
        await deps.aclose()
    validate(doc)
    paths = doc["paths"]
    for path in ("/v1/trends", "/v1/alerts", "/v1/rules", "/v1/rules/{rule_id}", "/v1/routing", "/v1/status"):
        answers = paths[path]["get"]["responses"]
        assert {"401", "403"} <= set(answers) and "`read`" in answers["403"]["description"], path
    for path in ("/healthz", "/readyz", "/metrics"):
        assert not {"401", "403"} & set(paths[path]["get"]["responses"]), path
    assert_error(r, 401, "unauthorized")
    documented_body(doc, "/v1/trends", "get", "401").validate(r.json())
