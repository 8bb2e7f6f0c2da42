"""``PUT /v1/entities/{key}`` checks what the matcher needs: trimmed names, tickers a cashtag
can match; rows stored before those checks still list."""

from __future__ import annotations

import httpx
import pytest
from integration.services.api.helpers import assert_error, bearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import Entity

pytestmark = pytest.mark.integration


async def test_put_strips_whitespace_and_refuses_unmatchable_tickers(
    client: httpx.AsyncClient, keys: dict[str, str], unique: str
) -> None:
    key, auth = f"ts{unique}", bearer(keys["write"])
    body = {"name": " Tesla ", "aliases": ["Tesla ", " Tesla Inc"], "tickers": [" TSLA", "BRK.B"], "group": " autos"}
    r = await client.put(f"/v1/entities/{key}", json=body, headers=auth)
    assert r.status_code == 201, r.text
    saved = r.json()
    assert (saved["name"], saved["aliases"], saved["tickers"], saved["group"]) == (
        "Tesla",
        ["Tesla", "Tesla Inc"],
        ["TSLA", "BRK.B"],
        "autos",
    )
    err = assert_error(
        await client.put(f"/v1/entities/{key}", json={**body, "tickers": ["TSLA", "RDS-A"]}, headers=auth), 422
    )
    assert err["details"][0]["loc"] == ["body", "tickers", 1]
    assert "cashtag" in err["details"][0]["message"]
    assert_error(await client.put(f"/v1/entities/{key}", json={**body, "tickers": ["7203"]}, headers=auth), 422)
    err = assert_error(await client.put(f"/v1/entities/{key}", json={**body, "aliases": ["  "]}, headers=auth), 422)
    assert err["details"][0]["loc"] == ["body", "aliases", 0]
    assert_error(await client.put(f"/v1/entities/{key}", json={**body, "aliases": "Tesla"}, headers=auth), 422)
    assert (await client.delete(f"/v1/entities/{key}", headers=auth)).status_code == 204


async def test_rows_with_old_tickers_still_list(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    key = f"ty{unique}"
    async with sessions.begin() as s:
        s.add(Entity(key=key, name="Toyota", aliases=["Toyota"], tickers=["7203"], case_sensitive_aliases=[]))
    r = await client.get("/v1/entities")
    assert r.status_code == 200, r.text
    listed = {e["key"]: e for e in r.json()["entities"]}
    assert listed[key]["tickers"] == ["7203"]
