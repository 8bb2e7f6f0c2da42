"""A write without a (well-formed) API key is 401 before its body is parsed: FastAPI
validates a body before any dependency runs, so ``{bad`` without a key answered 422 with
its decode errors, and a body nested 100,000 deep 400 (services.api.auth.KeyBeforeBody)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.api import auth
from services.api.app import build_app
from services.api.config import ApiSettings
from services.api.deps import make_deps

WELL_FORMED = "tw_abcdefgh_" + "a" * 43
JSON = {"content-type": "application/json"}
DEEP = "[" * 100_000 + "]" * 100_000
WRITES = [
    ("POST", "/v1/events"),
    ("PUT", "/v1/entities/x"),
    ("DELETE", "/v1/entities/x"),
    ("POST", "/v1/rules"),
    ("PATCH", "/v1/rules/1"),
    ("DELETE", "/v1/rules/1"),
    ("POST", "/v1/alerts/al-1/ack"),
    ("POST", "/v1/alerts/al-1/resolve"),
]


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    async def known_admin_key(*_: object) -> auth.KeyInfo:
        return auth.KeyInfo(7, "a", "abcdefgh", ("admin",), None, None)

    monkeypatch.setattr(auth, "verify_key", known_admin_key)
    settings = ApiSettings(environment="test", max_body_bytes=1_000_000)
    deps = make_deps(settings)  # connects to nothing: every request here is answered before a query
    try:
        transport = httpx.ASGITransport(app=build_app(settings, deps))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c
    finally:
        await deps.aclose()


def assert_401(r: httpx.Response, message: str) -> None:
    assert r.status_code == 401, r.text
    assert r.json() == {"error": {"code": "unauthorized", "message": message, "details": []}}
    assert r.headers["www-authenticate"] == 'Bearer realm="tonewatch"'


@pytest.mark.parametrize(("method", "url"), WRITES)
@pytest.mark.parametrize("body", ["{bad", DEEP, '{"events": 3}'])
async def test_a_write_without_a_key_is_401_whatever_its_body(
    client: httpx.AsyncClient, method: str, url: str, body: str
) -> None:
    r = await client.request(method, url, content=body, headers=JSON)
    assert_401(r, "an API key is required (Authorization: Bearer <key> or X-API-Key)")


@pytest.mark.parametrize("key", ["nope", "tw_ABCDEFGH_" + "a" * 43, "tw_abcdefgh_short", WELL_FORMED + "!"])
async def test_a_malformed_key_is_401_before_the_body(client: httpx.AsyncClient, key: str) -> None:
    r = await client.post("/v1/events", content="{bad", headers={**JSON, "X-API-Key": key})
    assert_401(r, "invalid or revoked API key")
    r = await client.post("/v1/rules", content=DEEP, headers={**JSON, "Authorization": f"Bearer {key}"})
    assert_401(r, "invalid or revoked API key")


async def test_with_a_well_formed_key_the_body_is_read_as_before(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/events", content="{bad", headers={**JSON, "X-API-Key": WELL_FORMED})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", r.text
    r = await client.put("/v1/entities/x", content="{bad", headers={**JSON, "Authorization": f"Bearer {WELL_FORMED}"})
    assert r.status_code == 422, r.text


async def test_reads_unknown_paths_and_methods_are_untouched(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/trends", content="{bad", headers=JSON)).status_code == 405
    assert (await client.post("/v1/nope", content="{bad", headers=JSON)).status_code == 404
    assert (await client.put("/healthz")).status_code == 405
    assert (await client.get("/v1/status")).status_code != 401


async def test_an_oversized_body_without_a_key_is_still_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"y" * 600_000

    r = await client.post("/v1/events", content=chunks(), headers=JSON)  # chunked: no Content-Length
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large", r.text
