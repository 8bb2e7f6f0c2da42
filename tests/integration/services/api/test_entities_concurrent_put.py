"""``PUT /v1/entities/{key}`` writes and answers in one statement: of concurrent PUTs of a
new key exactly one answers 201 (created), the others 200, and a DELETE racing a PUT never
makes it a 500. (It checked whether the key existed, upserted, and read the row back in three
sessions: concurrent PUTs of a new key all answered 201, and a DELETE before the read-back
failed an assertion.)"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from integration.services.api.helpers import bearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import Entity

pytestmark = pytest.mark.integration
PUTS = 12  # concurrent PUTs of one new key
ROUNDS = 5  # new keys, one after another


async def test_concurrent_puts_of_a_new_key_create_it_once(
    client: httpx.AsyncClient, keys: dict[str, str], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    auth = bearer(keys["write"])
    for n in range(ROUNDS):
        key = f"cp{unique}{n}"
        bodies = [{"name": f"Name {i}", "aliases": [f"Alias {i}"], "group": f"g{i}"} for i in range(PUTS)]
        answers = await asyncio.gather(
            *(client.put(f"/v1/entities/{key}", json=b, headers=auth) for b in bodies), return_exceptions=True
        )
        statuses = Counter(a.status_code if isinstance(a, httpx.Response) else repr(a) for a in answers)
        assert statuses == {201: 1, 200: PUTS - 1}, statuses
        for body, answer in zip(bodies, answers, strict=True):
            assert isinstance(answer, httpx.Response)
            saved = answer.json()  # each answer is the row its own PUT wrote
            assert (saved["key"], saved["name"], saved["aliases"], saved["group"], saved["active"]) == (
                key,
                body["name"],
                body["aliases"],
                body["group"],
                True,
            )
        async with sessions() as s:
            stored = (await s.execute(select(Entity).where(Entity.key == key))).scalar_one()
        assert stored.active and stored.name in {b["name"] for b in bodies}
        assert (await client.put(f"/v1/entities/{key}", json=bodies[0], headers=auth)).status_code == 200


async def test_a_delete_racing_puts_is_never_a_server_error(
    client: httpx.AsyncClient, keys: dict[str, str], unique: str
) -> None:
    auth = bearer(keys["write"])
    for n in range(ROUNDS):
        key = f"cd{unique}{n}"
        requests = []
        for i in range(PUTS):
            requests.append(client.put(f"/v1/entities/{key}", json={"name": f"Name {i}"}, headers=auth))
            requests.append(client.delete(f"/v1/entities/{key}", headers=auth))
        answers = await asyncio.gather(*requests, return_exceptions=True)
        puts = Counter(a.status_code if isinstance(a, httpx.Response) else repr(a) for a in answers[::2])
        deletes = Counter(a.status_code if isinstance(a, httpx.Response) else repr(a) for a in answers[1::2])
        assert set(puts) <= {200, 201} and 201 in puts, puts
        assert set(deletes) <= {204, 404}, deletes
        # every 201 after the first follows a DELETE that removed the key
        assert puts[201] <= 1 + deletes[204], (puts, deletes)


async def test_a_delete_just_after_the_write_does_not_fail_the_put(
    client: httpx.AsyncClient, keys: dict[str, str], unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race made deterministic: a DELETE lands as soon as the entity is written. The PUT
    answers with the row it wrote (the old read-back found none: a 500)."""
    from services.api import routes_entities
    from shared.db import watchlist

    auth, key = bearer(keys["write"]), f"cx{unique}"
    deleted: list[int] = []
    upsert = watchlist.upsert

    async def upsert_then_delete(sessions: async_sessionmaker[AsyncSession], entities: list[object]) -> int:
        n = await upsert(sessions, entities)  # type: ignore[arg-type]
        deleted.append((await client.delete(f"/v1/entities/{key}", headers=auth)).status_code)
        return n

    monkeypatch.setattr(routes_entities.watchlist, "upsert", upsert_then_delete)
    try:
        answer = await client.put(f"/v1/entities/{key}", json={"name": "Acme"}, headers=auth)
    finally:
        monkeypatch.undo()
    assert answer.status_code == 201, answer.text
    assert answer.json()["key"] == key and answer.json()["name"] == "Acme"
    if not deleted:  # the write is one statement: nothing comes between; delete it now
        deleted.append((await client.delete(f"/v1/entities/{key}", headers=auth)).status_code)
    assert deleted == [204]
