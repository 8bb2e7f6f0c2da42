"""Rules CRUD validated with RuleSpec; every failure in the one error format."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from integration.services.api.helpers import assert_error, bearer

pytestmark = pytest.mark.integration


def rule(name: str, **over: Any) -> dict[str, Any]:
    return {
        "name": name,
        "scope": {"entities": ["_all"]},
        "window_s": 300,
        "min_volume": 10,
        "abs_threshold": 0.5,
        "z_threshold": 2.0,
        "cooldown_s": 600,
        "resolve_after_s": 300,
        **over,
    }


async def test_crud_roundtrip(client: httpx.AsyncClient, keys: dict[str, str], unique: str) -> None:
    admin = bearer(keys["admin"])
    hook = [{"url": "https://hooks.example.com/x", "format": "slack"}]
    r = await client.post("/v1/rules", json=rule(f"r-{unique}", channels=hook), headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    rid = created["id"]
    assert created["baseline"] == "ewma" and created["channels"][0]["format"] == "slack"
    assert (await client.get(f"/v1/rules/{rid}")).json()["name"] == f"r-{unique}"
    names = [x["name"] for x in (await client.get("/v1/rules")).json()]
    assert f"r-{unique}" in names and "stream-negative-surge" in names  # seeded by the migration
    r = await client.patch(f"/v1/rules/{rid}", json={"abs_threshold": 0.7, "enabled": False}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["abs_threshold"], r.json()["enabled"], r.json()["window_s"]) == (0.7, False, 300)
    assert (await client.get(f"/v1/rules/{rid}")).json()["enabled"] is False
    assert (await client.delete(f"/v1/rules/{rid}", headers=admin)).status_code == 204
    assert_error(await client.get(f"/v1/rules/{rid}"), 404, "not_found")
    assert_error(await client.delete(f"/v1/rules/{rid}", headers=admin), 404)
    assert_error(await client.patch(f"/v1/rules/{rid}", json={"enabled": True}, headers=admin), 404)


async def test_validation_errors_are_422(client: httpx.AsyncClient, keys: dict[str, str], unique: str) -> None:
    admin = bearer(keys["admin"])
    err = assert_error(
        await client.post("/v1/rules", json=rule(f"a-{unique}", window_s=90), headers=admin), 422, "validation_error"
    )
    assert any("whole number of minutes" in d["message"] for d in err["details"])
    bad_scope = rule(f"b-{unique}", scope={"entities": ["x"], "group": "banks"})
    err = assert_error(await client.post("/v1/rules", json=bad_scope, headers=admin), 422)
    assert err["details"][0]["loc"][:2] == ["body", "scope"]
    err = assert_error(await client.post("/v1/rules", json={"name": "x"}, headers=admin), 422)
    assert {tuple(d["loc"]) for d in err["details"]} >= {("body", "scope"), ("body", "window_s")}
    err = assert_error(await client.post("/v1/rules", json=rule(f"c-{unique}", colour="red"), headers=admin), 422)
    assert err["details"][0]["loc"] == ["body", "colour"]
    assert_error(
        await client.post("/v1/rules", content=b"{not json", headers={**admin, "content-type": "application/json"}), 422
    )


async def test_patch_validates_the_merged_rule(client: httpx.AsyncClient, keys: dict[str, str], unique: str) -> None:
    admin = bearer(keys["admin"])
    rid = (await client.post("/v1/rules", json=rule(f"p-{unique}"), headers=admin)).json()["id"]
    err = assert_error(await client.patch(f"/v1/rules/{rid}", json={"abs_threshold": 3}, headers=admin), 422)
    assert err["details"][0]["loc"] == ["body", "abs_threshold"]
    assert_error(await client.patch(f"/v1/rules/{rid}", json={"nope": 1}, headers=admin), 422)
    assert (await client.get(f"/v1/rules/{rid}")).json()["abs_threshold"] == 0.5  # unchanged


async def test_duplicate_name_is_409(client: httpx.AsyncClient, keys: dict[str, str], unique: str) -> None:
    admin = bearer(keys["admin"])
    assert (await client.post("/v1/rules", json=rule(f"d-{unique}"), headers=admin)).status_code == 201
    assert_error(await client.post("/v1/rules", json=rule(f"d-{unique}"), headers=admin), 409, "conflict")
    rid = (await client.post("/v1/rules", json=rule(f"e-{unique}"), headers=admin)).json()["id"]
    assert_error(await client.patch(f"/v1/rules/{rid}", json={"name": f"d-{unique}"}, headers=admin), 409)
