"""Values PostgreSQL or ``datetime`` cannot hold are refused with a 422 in the one error
format: each of these was a 500 before (int4 overflow, NUL in a string, a time that
overflows once converted to UTC)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from integration.services.api.helpers import assert_error, bearer
from integration.services.api.test_rules import rule

pytestmark = pytest.mark.integration
TOO_EARLY = "0001-01-01T00:00:00+14:00"  # before year 1 in UTC
TOO_LATE = "9999-12-31T23:59:59-14:00"  # after year 9999 in UTC


@pytest.mark.parametrize(
    ("over", "loc"),
    [
        ({"cooldown_s": 2**40}, ["body", "cooldown_s"]),
        ({"resolve_after_s": 4373454276284181905408}, ["body", "resolve_after_s"]),
        ({"min_volume": 2**31}, ["body", "min_volume"]),
        ({"scope": {"entities": ["a\u0000b"]}}, ["body", "scope", "entities", 0]),
        ({"scope": {"entities": ["ACME", "not a key"]}}, ["body", "scope", "entities", 1]),
        ({"scope": {"group": "banks\u0000"}}, ["body", "scope", "group"]),
    ],
)
async def test_rule_values_the_database_cannot_hold(
    client: httpx.AsyncClient, keys: dict[str, str], unique: str, over: dict[str, Any], loc: list[Any]
) -> None:
    err = assert_error(
        await client.post("/v1/rules", json=rule(f"h-{unique}", **over), headers=bearer(keys["admin"])), 422
    )
    assert err["details"][0]["loc"] == loc


async def test_rule_ids_beyond_int4_are_422(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    admin = bearer(keys["admin"])
    big = 2**31
    for response in (
        await client.get(f"/v1/rules/{big}"),
        await client.patch(f"/v1/rules/{big}", json={"enabled": False}, headers=admin),
        await client.delete(f"/v1/rules/{big}", headers=admin),
    ):
        assert assert_error(response, 422)["details"][0]["loc"] == ["path", "rule_id"]
    assert_error(await client.get(f"/v1/rules/{big - 1}"), 404)  # the largest id is still looked up


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Acme\u0000"},
        {"name": "Acme", "aliases": ["Acme\u0000Corp"]},
        {"name": "Acme", "group": "ind\u0000"},
        {"name": "Acme\nplc"},
    ],
)
async def test_entity_names_with_control_characters(
    client: httpx.AsyncClient, keys: dict[str, str], unique: str, body: dict[str, Any]
) -> None:
    r = await client.put(f"/v1/entities/H{unique}", json=body, headers=bearer(keys["write"]))
    assert "control characters" in assert_error(r, 422, "validation_error")["details"][0]["message"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/trends?entity=%00"),
        ("GET", "/v1/alerts?entity=a%00b"),
        ("GET", "/v1/entities/a%00b/messages"),
        ("POST", "/v1/alerts/a%00b/ack"),
    ],
)
async def test_nul_in_the_url(client: httpx.AsyncClient, keys: dict[str, str], method: str, url: str) -> None:
    r = await client.request(method, url, headers=bearer(keys["write"]))
    assert "NUL" in assert_error(r, 422, "validation_error")["message"]


@pytest.mark.parametrize(
    "url",
    [
        "/v1/trends?entity=_all&from={}",
        "/v1/alerts?from={}",
        "/v1/entities/ACME/messages?from={}",
        "/v1/routing?to={}",
    ],
)
@pytest.mark.parametrize("when", [TOO_EARLY, TOO_LATE])
async def test_times_out_of_range_in_queries(client: httpx.AsyncClient, url: str, when: str) -> None:
    r = await client.get(url.format(when.replace("+", "%2B")))
    err = assert_error(r, 422, "validation_error")
    assert err["details"][0]["loc"][0] == "query" and "out of range" in err["details"][0]["message"]


async def test_events_with_times_out_of_range(client: httpx.AsyncClient, keys: dict[str, str], unique: str) -> None:
    events = [
        {"stream": "news", "id": f"t-{unique}-{i}", "text": "ACME falls", "event_time": t}
        for i, t in enumerate((TOO_EARLY, TOO_LATE))
    ]
    err = assert_error(await client.post("/v1/events", json={"events": events}, headers=bearer(keys["write"])), 422)
    assert [d["loc"] for d in err["details"]] == [
        ["body", "events", 0, "event_time"],
        ["body", "events", 1, "event_time"],
    ]
