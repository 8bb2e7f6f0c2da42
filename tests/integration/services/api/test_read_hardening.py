"""Read endpoints under load they must survive: a statement time limit (503, not a hang
or a 500), a deterministic latest-500 cut, and entity keys a URL path cannot name."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from integration.services.api.helpers import assert_error, bearer
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.app import build_app
from services.api.config import ApiSettings
from services.api.deps import make_deps
from shared.db import watchlist
from shared.db.models import Entity, ScoredEventRow

pytestmark = pytest.mark.integration
T0 = datetime(2031, 9, 10, 11, 0, tzinfo=UTC)


def _message(entity: str, i: int, p: float) -> ScoredEventRow:
    return ScoredEventRow(
        id=f"{entity}-{i:03d}",
        stream="chat",
        event_time=T0,  # all at the same instant: only the tie-break orders them
        received_time=T0,
        entities=[entity, "_all"],
        text=f"message {i:03d}",
        sentiment="negative" if p > 0.5 else "neutral",
        sentiment_confidence=p,
        sentiment_score=-p,
        negative_prob=p,
        model_version="v1",
    )


@pytest.fixture
async def entity(sessions: async_sessionmaker[AsyncSession], unique: str) -> AsyncIterator[str]:
    key = f"hard{unique}"
    yield key
    async with sessions.begin() as s:
        await s.execute(delete(ScoredEventRow).where(ScoredEventRow.id.startswith(f"{key}-")))


@pytest.mark.parametrize(
    ("table", "path"),
    [
        ("scored_events", "/v1/entities/{entity}/messages?from=1900-01-01"),
        ("trend_minute", "/v1/trends?entity={entity}&from=2031-09-10T00:00Z&to=2031-09-11T00:00Z"),
        ("trend_minute", "/v1/entities"),
        ("routing_minute", "/v1/routing"),
    ],
)
async def test_a_read_past_the_time_limit_is_a_503_with_retry_after(
    api_settings: ApiSettings, sessions: async_sessionmaker[AsyncSession], entity: str, table: str, path: str
) -> None:
    """A read held up past TW_API_READ_TIMEOUT_S (here by a lock on scored_events; an
    unbounded window's ranking is the same to PostgreSQL) is cancelled: 503 query_timeout
    with Retry-After in the one error format, and the pooled connection keeps no limit."""
    settings = api_settings.model_copy(update={"read_timeout_s": 0.3})
    deps = make_deps(settings)
    try:
        app = build_app(settings, deps)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client,
            sessions() as locker,
        ):
            await locker.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            try:
                r = await asyncio.wait_for(client.get(path.format(entity=entity)), 10)
            finally:
                await locker.rollback()
            err = assert_error(r, 503, "query_timeout")
            assert r.headers["Retry-After"].isdigit(), r.headers
            assert "Traceback" not in r.text and "statement" not in err["message"].lower()
            ok = await client.get(path.format(entity=entity))
            assert ok.status_code == 200, ok.text
        async with deps.sessions() as session:  # SET LOCAL: gone with the read's transaction
            assert (await session.execute(text("SHOW statement_timeout"))).scalar_one() == "0"
    finally:
        await deps.aclose()


async def test_the_latest_500_cut_breaks_ties_of_equal_event_times(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], entity: str
) -> None:
    """600 messages at one instant: the latest 500 are those with the greatest ids
    (100-599), whatever order they were stored in; the 100 most negative (0-99) fall
    outside the cut, every time."""
    messages = [_message(entity, i, 0.99 if i < 100 else 0.9 if i == 550 else 0.1) for i in range(600)]
    random.Random(7).shuffle(messages)
    async with sessions.begin() as s:
        s.add_all(messages)
    for _ in range(3):
        r = await client.get(f"/v1/entities/{entity}/messages", params={"limit": 2, "stream": "chat"})
        assert r.status_code == 200, r.text
        assert [m["text"] for m in r.json()] == ["message 550", "message 100"]


@pytest.mark.parametrize("key", [".", ".."])
async def test_dot_keys_are_refused_but_stored_ones_still_list(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    key: str,
) -> None:
    """'.' and '..' pass the key pattern but no URL path names them: PUT refuses them
    with a 422 naming the key; a row stored before is still listed and loaded."""
    encoded = key.replace(".", "%2E")
    r = await client.put(f"/v1/entities/{encoded}", json={"name": "Dot"}, headers=bearer(keys["write"]))
    err = assert_error(r, 422, "validation_error")
    assert repr(key) in err["message"] and err["details"][0]["loc"] == ["path", "key"], err
    async with sessions() as s:
        assert await s.get(Entity, key) is None
    async with sessions.begin() as s:
        s.add(Entity(key=key, name="Dot", aliases=["Dotcom"], tickers=[], case_sensitive_aliases=[]))
    try:
        listed = await client.get("/v1/entities")
        assert listed.status_code == 200, listed.text
        assert key in [e["key"] for e in listed.json()["entities"]]
        assert key in [e.key for e in await watchlist.load_active(sessions)]
    finally:
        async with sessions.begin() as s:
            await s.execute(delete(Entity).where(Entity.key == key))


async def test_a_blank_group_is_stored_as_no_group(
    client: httpx.AsyncClient, keys: dict[str, str], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    key, auth = f"blank{unique}", bearer(keys["write"])
    r = await client.put(f"/v1/entities/{key}", json={"name": "Blank", "group": "   "}, headers=auth)
    assert r.status_code == 201, r.text
    assert r.json()["group"] is None
    async with sessions() as s:
        row = await s.get(Entity, key)
        assert row is not None and row.group is None
    assert (await client.delete(f"/v1/entities/{key}", headers=auth)).status_code == 204
