"""``/v1/rules`` on the real stack: a channel listed twice is refused (422); a scope naming
an entity or group the watchlist lacks is saved with ``warnings`` (a rule may come before
its entities, but matching is exact: a miscased name never fires)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from integration.services.api.helpers import assert_error, bearer, insert_rule
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import AlertRule

pytestmark = pytest.mark.integration
HOOK = "https://hooks.example.com/services/T1/B1/secretpart"


def rule(name: str, **over: Any) -> dict[str, Any]:
    return {
        "name": name,
        "scope": {"entities": ["_all"]},
        "window_s": 300,
        "min_volume": 3,
        "abs_threshold": 0.6,
        "z_threshold": 1.5,
        "cooldown_s": 600,
        "resolve_after_s": 300,
        **over,
    }


async def test_a_channel_listed_twice_is_422_on_create_and_patch(
    client: httpx.AsyncClient, keys: dict[str, str], unique: str
) -> None:
    admin = bearer(keys["admin"])
    twice = [{"url": HOOK}, {"url": HOOK, "format": "json"}]
    err = assert_error(
        await client.post("/v1/rules", json=rule(f"twice-{unique}", channels=twice), headers=admin),
        422,
        "validation_error",
    )
    (detail,) = err["details"]
    assert detail["loc"] == ["body", "channels"] and "channel 1 repeats channel 0" in detail["message"]
    assert "secretpart" not in str(err)
    r = await client.post("/v1/rules", json=rule(f"once-{unique}", channels=twice[:1]), headers=admin)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert_error(await client.patch(f"/v1/rules/{rid}", json={"channels": twice}, headers=admin), 422)
    both = [{"url": HOOK}, {"url": HOOK, "format": "slack"}]  # one URL in two formats: two channels
    assert (await client.patch(f"/v1/rules/{rid}", json={"channels": both}, headers=admin)).status_code == 200


async def test_a_rule_stored_with_a_channel_twice_still_lists(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """Also without the admin scope, where two different URLs mask alike."""
    rid = await insert_rule(sessions, f"legacy-twice-{unique}")
    channels = [{"type": "webhook", "url": HOOK, "format": "json"}] * 2 + [
        {"type": "webhook", "url": "https://hooks.example.com/other", "format": "json"}
    ]
    async with sessions.begin() as s:
        await s.execute(update(AlertRule).where(AlertRule.id == rid).values(channels=channels))
    r = await client.get(f"/v1/rules/{rid}")
    assert r.status_code == 200, r.text
    assert len(r.json()["channels"]) == 3
    assert (await client.get("/v1/rules")).status_code == 200


async def test_a_scope_off_the_watchlist_is_saved_with_warnings(
    client: httpx.AsyncClient, keys: dict[str, str], unique: str
) -> None:
    admin = bearer(keys["admin"])
    key, group = f"ACME{unique}".upper(), f"Banks{unique}"
    r = await client.put(f"/v1/entities/{key}", json={"name": "Acme Corp", "group": group}, headers=admin)
    assert r.status_code in (200, 201), r.text

    r = await client.post("/v1/rules", json=rule(f"lower-{unique}", scope={"entities": [key.lower()]}), headers=admin)
    assert r.status_code == 201, r.text
    (warning,) = r.json()["warnings"]
    assert warning.startswith(f"scope entity '{key.lower()}' is not on the watchlist; did you mean '{key}'?")
    rid = r.json()["id"]

    r = await client.post("/v1/rules", json=rule(f"group-{unique}", scope={"group": group.lower()}), headers=admin)
    assert r.status_code == 201, r.text
    (warning,) = r.json()["warnings"]
    assert f"scope group '{group.lower()}' is not the group of any entity" in warning
    assert f"did you mean '{group}'?" in warning

    r = await client.post("/v1/rules", json=rule(f"new-{unique}", scope={"entities": [f"NEW{unique}"]}), headers=admin)
    assert r.status_code == 201, r.text  # a rule before its entity: saved, with a warning without a guess
    (warning,) = r.json()["warnings"]
    assert "not on the watchlist" in warning and "did you mean" not in warning

    for i, scope in enumerate(({"entities": [key, "_all"]}, {"group": group}, {"all_entities": True})):
        r = await client.post("/v1/rules", json=rule(f"ok-{unique}-{i}", scope=scope), headers=admin)
        assert r.status_code == 201, r.text
        assert r.json()["warnings"] == []

    # a patch answers for the scope as it is after the change
    r = await client.patch(f"/v1/rules/{rid}", json={"min_volume": 4}, headers=admin)
    assert r.status_code == 200, r.text
    assert len(r.json()["warnings"]) == 1
    r = await client.patch(f"/v1/rules/{rid}", json={"scope": {"entities": [key]}}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == []
    assert "warnings" not in (await client.get(f"/v1/rules/{rid}")).json()  # reads carry no warnings


async def test_the_openapi_document_shows_the_warnings(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    for method, status in (("post", "201"), ("patch", "200")):
        path = "/v1/rules" if method == "post" else "/v1/rules/{rule_id}"
        ref = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert schema["properties"]["warnings"]["type"] == "array"
