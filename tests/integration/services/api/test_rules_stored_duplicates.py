"""``PATCH /v1/rules/{id}`` on the real stack for a rule stored listing a channel twice
(written by SQL, as before repeats were refused): a patch that does not set ``channels``
succeeds, saves the channel once and says so in ``warnings`` (URL masked); a patch that
sets ``channels`` with a repeat is still refused (422); such a rule still reads."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from integration.services.api.helpers import assert_error, bearer, insert_rule
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import AlertRule

pytestmark = pytest.mark.integration
HOOK = "https://hooks.example.com/services/T1/B1/secretpart"
OTHER = "https://other.example.com/hook?token=othersecret"


async def legacy(sessions: async_sessionmaker[AsyncSession], name: str, channels: list[dict[str, Any]]) -> int:
    """A rule stored with ``channels`` as they are, repeats included (no validation)."""
    rid = await insert_rule(sessions, name)
    async with sessions.begin() as s:
        await s.execute(
            text("UPDATE alert_rules SET channels = CAST(:channels AS jsonb) WHERE id = :id"),
            {"channels": json.dumps(channels), "id": rid},
        )
    return rid


async def stored_channels(sessions: async_sessionmaker[AsyncSession], rid: int) -> list[dict[str, Any]]:
    async with sessions() as s:
        channels: list[dict[str, Any]] = (
            await s.execute(select(AlertRule.channels).where(AlertRule.id == rid))
        ).scalar_one()
    return channels


def hook(url: str, fmt: str = "json") -> dict[str, Any]:
    return {"type": "webhook", "url": url, "format": fmt}


async def test_a_patch_not_setting_channels_collapses_the_stored_repeat(
    client: httpx.AsyncClient, keys: dict[str, str], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    admin = bearer(keys["admin"])
    rid = await legacy(sessions, f"legacy-dup-{unique}", [hook(HOOK), hook(OTHER), hook(HOOK), hook(HOOK, "slack")])

    # it reads, with or without the admin scope, as stored
    for headers in ({}, admin):
        r = await client.get(f"/v1/rules/{rid}", headers=headers)
        assert r.status_code == 200, r.text
        assert len(r.json()["channels"]) == 4
        listed = await client.get("/v1/rules", headers=headers)
        assert listed.status_code == 200, listed.text
        assert rid in [rule["id"] for rule in listed.json()]

    r = await client.patch(f"/v1/rules/{rid}", json={"enabled": False}, headers=admin)
    assert r.status_code == 200, r.text  # was 422: "channel 2 repeats channel 0", a field not patched
    body = r.json()
    assert body["enabled"] is False
    assert [(c["url"], c["format"]) for c in body["channels"]] == [(HOOK, "json"), (OTHER, "json"), (HOOK, "slack")]
    (warning,) = body["warnings"]
    assert warning.startswith("channel 2 repeated channel 0 (https://hooks.example.com/")
    assert "format json" in warning and "now lists it once" in warning
    assert "secretpart" not in warning and "/services/" not in warning
    assert [(c["url"], c["format"]) for c in await stored_channels(sessions, rid)] == [
        (HOOK, "json"),
        (OTHER, "json"),
        (HOOK, "slack"),
    ]

    # once collapsed, nothing more to say
    r = await client.patch(f"/v1/rules/{rid}", json={"abs_threshold": 0.8}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == [] and r.json()["abs_threshold"] == 0.8


async def test_two_spellings_of_one_url_are_one_channel(
    client: httpx.AsyncClient, keys: dict[str, str], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """The same channel as the refusal defines it: URL as validated (host case, a bare host's ``/``) and format."""
    admin = bearer(keys["admin"])
    bare = "https://Hooks.Example.com"
    rid = await legacy(sessions, f"legacy-spell-{unique}", [hook(bare), hook("https://hooks.example.com/")])
    r = await client.patch(f"/v1/rules/{rid}", json={"z_threshold": 2.5, "min_volume": 7}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["z_threshold"] == 2.5 and r.json()["min_volume"] == 7
    (warning,) = r.json()["warnings"]
    assert warning.startswith("channel 1 repeated channel 0 (https://hooks.example.com/")
    assert [c["url"] for c in await stored_channels(sessions, rid)] == ["https://hooks.example.com/"]  # as validated


async def test_a_patch_setting_channels_with_a_repeat_is_still_refused(
    client: httpx.AsyncClient, keys: dict[str, str], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    admin = bearer(keys["admin"])
    twice = [hook(HOOK), hook(HOOK)]
    rid = await legacy(sessions, f"legacy-set-{unique}", twice)
    for channels in (twice, [hook(OTHER), hook(OTHER)]):
        err = assert_error(
            await client.patch(f"/v1/rules/{rid}", json={"channels": channels, "enabled": False}, headers=admin),
            422,
            "validation_error",
        )
        assert "channel 1 repeats channel 0" in str(err) and "secret" not in str(err)
    assert await stored_channels(sessions, rid) == twice  # nothing saved
    r = await client.patch(f"/v1/rules/{rid}", json={"channels": [hook(OTHER)]}, headers=admin)
    assert r.status_code == 200, r.text  # fixing the channels themselves: nothing to warn about
    assert r.json()["warnings"] == []
    assert [c["url"] for c in await stored_channels(sessions, rid)] == [OTHER]
