"""API keys on the real database: missing, wrong-scope, revoked, both header forms."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from integration.services.api.helpers import assert_error, bearer

from services.api import auth
from services.api.config import ApiSettings
from services.api.deps import Deps

pytestmark = pytest.mark.integration
ENTITY = {"name": "Acme plc", "aliases": ["Acme"], "tickers": ["ACME"]}


async def test_write_without_key_is_401(client: httpx.AsyncClient) -> None:
    r = await client.put("/v1/entities/acme", json=ENTITY)
    err = assert_error(r, 401, "unauthorized")
    assert "API key" in err["message"]
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_malformed_and_unknown_keys_are_401(client: httpx.AsyncClient) -> None:
    assert_error(await client.put("/v1/entities/acme", json=ENTITY, headers=bearer("nonsense")), 401)
    forged = "tw_abcdefgh_" + "x" * 43
    assert_error(await client.put("/v1/entities/acme", json=ENTITY, headers=bearer(forged)), 401)


async def test_wrong_scope_is_403(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    err = assert_error(
        await client.put("/v1/entities/acme", json=ENTITY, headers=bearer(keys["read"])), 403, "forbidden"
    )
    assert err["details"] == [{"granted": ["read"]}]
    rule = {
        "name": "r-scope",
        "scope": {"entities": ["_all"]},
        "window_s": 300,
        "min_volume": 5,
        "abs_threshold": 0.5,
        "z_threshold": 2,
        "cooldown_s": 60,
        "resolve_after_s": 60,
    }
    assert_error(await client.post("/v1/rules", json=rule, headers=bearer(keys["write"])), 403)


async def test_scopes_nest(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    r = await client.put("/v1/entities/acme-w", json=ENTITY, headers=bearer(keys["write"]))
    assert r.status_code == 201, r.text
    r = await client.put("/v1/entities/acme-a", json=ENTITY, headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 201, r.text


async def test_revoked_key_is_401(client: httpx.AsyncClient, deps: Deps) -> None:
    new = await auth.create_key(deps.sessions, "soon-revoked", "write")
    r = await client.put("/v1/entities/acme-r", json=ENTITY, headers=bearer(new.key))
    assert r.status_code == 201, r.text
    revoked = await auth.revoke_key(deps.sessions, new.info.prefix)
    assert revoked is not None and revoked.revoked_at is not None
    err = assert_error(await client.put("/v1/entities/acme-r", json=ENTITY, headers=bearer(new.key)), 401)
    assert "revoked" in err["message"]


async def test_keys_are_stored_hashed(deps: Deps) -> None:
    new = await auth.create_key(deps.sessions, "hashed", "read")
    listed = {k.prefix: k for k in await auth.list_keys(deps.sessions)}
    assert new.info.prefix in listed
    from sqlalchemy import select

    from shared.db.models import ApiKey

    async with deps.sessions() as session:
        row = (await session.execute(select(ApiKey).where(ApiKey.prefix == new.info.prefix))).scalar_one()
    assert row.key_hash == auth.hash_key(new.key) and new.key not in row.key_hash
    assert await auth.verify_key(deps.sessions, new.key) is not None
    assert await auth.verify_key(deps.sessions, new.key[:-1] + ("A" if new.key[-1] != "A" else "B")) is None


async def test_reads_open_by_default_and_guarded_when_configured(
    client: httpx.AsyncClient,
    api_settings: ApiSettings,
    keys: dict[str, str],
    make_client: Callable[[ApiSettings], httpx.AsyncClient],
) -> None:
    assert (await client.get("/v1/trends")).status_code == 200
    strict = api_settings.model_copy(update={"require_key_for_reads": True})
    async with make_client(strict) as c:
        assert_error(await c.get("/v1/trends"), 401)
        assert_error(await c.get("/v1/alerts"), 401)
        assert (await c.get("/v1/trends", headers=bearer(keys["read"]))).status_code == 200
        assert (await c.get("/v1/alerts", headers=bearer(keys["admin"]))).status_code == 200
        assert (await c.get("/healthz")).status_code == 200  # liveness stays open


async def test_revoking_an_id_past_the_column_is_no_such_key(deps: Deps) -> None:
    """``tonewatch keys revoke 99999999999`` printed a database traceback (int4 overflow)."""
    assert await auth.revoke_key(deps.sessions, "99999999999") is None


async def test_revoking_by_the_whole_key_is_refused_without_echoing_it(
    deps: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    """``revoke_key`` took the whole key (the CLI no longer passes one): it must not
    travel as a way to name a key. Refused, the key stays valid and is in no message."""
    new = await auth.create_key(deps.sessions, "whole-key", "read")
    secret = new.key.split("_", 2)[2]
    caplog.set_level("DEBUG")
    for ref in (new.key, f"  {new.key}\n", new.key[:-1], f"tw_{new.info.prefix}_", "١٢", "", "tw_"):
        with pytest.raises(ValueError) as refused:
            await auth.revoke_key(deps.sessions, ref)
        assert str(refused.value) == auth.NOT_ID_OR_PREFIX
        assert "id" in str(refused.value) and "prefix" in str(refused.value)
    assert await auth.verify_key(deps.sessions, new.key) is not None
    assert secret not in caplog.text and new.info.prefix not in caplog.text
    revoked = await auth.revoke_key(deps.sessions, f" {new.info.prefix} ")
    assert revoked is not None and revoked.id == new.info.id and revoked.revoked_at is not None
    again = await auth.revoke_key(deps.sessions, str(new.info.id))
    assert again is not None and again.revoked_at == revoked.revoked_at
