"""Edges of the read endpoints (trends, watchlist, messages, routing) against the real
database: watchlist rows stored before today's input checks, query parameters the
endpoint does not take, and a UTC offset whose ``+`` the query string turned into a space."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from integration.services.api.helpers import assert_error
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import Entity, TrendMinute

pytestmark = pytest.mark.integration
T0 = datetime(2031, 7, 8, 9, 0, tzinfo=UTC)


@pytest.fixture
async def legacy_rows(sessions: async_sessionmaker[AsyncSession], unique: str) -> AsyncIterator[dict[str, Entity]]:
    """Watchlist rows as earlier versions could store them (direct imports, before the
    API refused control characters, empty names, long or too many aliases)."""
    rows = {
        f"tab{unique}": Entity(name="Tabbed", aliases=["Acme\tCorp"], case_sensitive_aliases=["AC\n"]),
        f"many{unique}": Entity(name="Many", aliases=[f"alias {i}" for i in range(101)]),
        f"long{unique}": Entity(name=" Padded ", aliases=["x" * 201, ""], group="g\x7f"),
    }
    async with sessions.begin() as s:
        for key, row in rows.items():
            row.key = key
            row.tickers = []
            row.aliases = row.aliases or []
            row.case_sensitive_aliases = row.case_sensitive_aliases or []
            s.add(row)
    yield rows
    async with sessions.begin() as s:
        await s.execute(delete(Entity).where(Entity.key.in_(list(rows))))


async def test_the_watchlist_lists_rows_stored_before_todays_checks(
    client: httpx.AsyncClient, legacy_rows: dict[str, Entity]
) -> None:
    """One such row made GET /v1/entities a 500 (the dashboard's watchlist stayed empty):
    the answer re-checked stored rows as new input."""
    r = await client.get("/v1/entities")
    assert r.status_code == 200, r.text
    listed = {e["key"]: e for e in r.json()["entities"]}
    for key, row in legacy_rows.items():
        got = listed[key]
        assert (got["name"], got["aliases"], got["group"]) == (row.name, row.aliases, row.group)  # as stored
        assert got["case_sensitive_aliases"] == row.case_sensitive_aliases and got["stats"]["total"] == 0


@pytest.mark.parametrize(
    ("url", "unknown"),
    [
        ("/v1/trends?entity=_all&start=2031-07-08T09:00Z&end=2031-07-08T10:00Z", ["end", "start"]),
        ("/v1/trends?entity=_all&from=2031-07-08T09:00Z&limit=5", ["limit"]),
        ("/v1/entities?from=2031-07-08T09:00Z&to=2031-07-08T10:00Z", ["from"]),
        ("/v1/entities/_all/messages?limit=10&offset=10", ["offset"]),
        ("/v1/entities/_all/messages?since=2031-07-08T09:00Z", ["since"]),
        ("/v1/routing?queue=cards", ["queue"]),
    ],
)
async def test_a_query_parameter_the_endpoint_does_not_take_is_422(
    client: httpx.AsyncClient, url: str, unknown: list[str]
) -> None:
    """A mistyped or unsupported parameter was ignored: ``start``/``end`` answered the
    latest two hours, ``offset`` the same messages again, ``from`` on the watchlist a
    window that ignored it, ``queue`` every queue, all as 200."""
    err = assert_error(await client.get(url), 422, "validation_error")
    assert [d["loc"] for d in err["details"]] == [["query", name] for name in unknown]
    assert all(name in err["message"] for name in unknown)


async def test_the_parameters_each_endpoint_takes_are_still_taken(client: httpx.AsyncClient) -> None:
    at = {"from": T0.isoformat(), "to": (T0 + timedelta(minutes=5)).isoformat()}
    for url, params in (
        (
            "/v1/trends",
            {"entity": "_all", "stream": "news", "granularity": "minute", "points": 5, "fill": "true", **at},
        ),
        ("/v1/entities", {"stream": "news", "granularity": "hour", "points": 4, "to": at["to"]}),
        ("/v1/entities/_all/messages", {"stream": "chat", "limit": 3, **at}),
        ("/v1/routing", {"points": 5, **at}),
    ):
        r = await client.get(url, params=params)
        assert r.status_code == 200, (url, r.text)


@pytest.fixture
async def minute_rows(sessions: async_sessionmaker[AsyncSession], unique: str) -> AsyncIterator[str]:
    entity = f"tz{unique}"
    async with sessions.begin() as s:
        s.add_all(
            TrendMinute(
                stream="news",
                entity=entity,
                bucket=T0 + timedelta(minutes=i),
                model_version="v1",
                count=i + 1,
                negative=0,
                neutral=i + 1,
                positive=0,
                score_sum=0.0,
                confidence_sum=float(i + 1),
            )
            for i in range(3)
        )
    yield entity
    async with sessions.begin() as s:
        await s.execute(delete(TrendMinute).where(TrendMinute.entity == entity))


async def test_an_offset_whose_plus_became_a_space_is_read_as_plus(client: httpx.AsyncClient, minute_rows: str) -> None:
    """``curl '...?from=2031-07-08T11:00:00+02:00'`` sends the ``+`` unencoded and the
    query string reads it as a space: that was a 422 ("unexpected extra characters")."""
    encoded = await client.get(
        "/v1/trends", params={"entity": minute_rows, "from": "2031-07-08T11:00:00+02:00", "to": "2031-07-08T11:02+0200"}
    )
    assert encoded.status_code == 200, encoded.text
    assert [b["count"] for b in encoded.json()["buckets"]] == [1, 2]
    raw = await client.get(f"/v1/trends?entity={minute_rows}&from=2031-07-08T11:00:00+02:00&to=2031-07-08T11:02+0200")
    assert raw.status_code == 200, raw.text
    assert raw.json() == encoded.json()
    messages = await client.get("/v1/entities/_all/messages?from=2031-07-08 11:00:00.5+02:00&to=2031-07-08T11:02+02:00")
    assert messages.status_code == 200, messages.text
    for url in ("/v1/routing?to=2031-07-08T11:02+02:00", "/v1/entities?to=2031-07-08T11:02:00+05:30"):
        assert (await client.get(url)).status_code == 200, url
