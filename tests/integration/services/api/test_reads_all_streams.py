"""Reads of all streams name every stream (to read the trend tables' (stream, bucket)
index stream by stream): they still see the data of each stream, whichever is later."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.query import latest_trend_bucket
from shared.db.models import Entity, TrendHour, TrendMinute

pytestmark = pytest.mark.integration
T = datetime(2040, 5, 6, 10, 0, tzinfo=UTC)  # later than anything the other tests insert
NEWS_AT, CHAT_AT = T, T + timedelta(minutes=5)


def _row(table: type[TrendMinute] | type[TrendHour], entity: str, stream: str, at: datetime, count: int) -> object:
    return table(
        stream=stream,
        entity=entity,
        bucket=at,
        model_version="v1",
        count=count,
        negative=1,
        neutral=count - 1,
        positive=0,
        score_sum=-1.0,
        confidence_sum=0.5 * count,
    )


@pytest.fixture
async def two_streams(sessions: async_sessionmaker[AsyncSession], unique: str) -> AsyncIterator[str]:
    """An entity with news at ``NEWS_AT`` and chat five minutes later (hours: chat an hour later)."""
    entity = f"both{unique}"
    async with sessions.begin() as s:
        s.add_all(
            [
                _row(TrendMinute, entity, "news", NEWS_AT, 3),
                _row(TrendMinute, entity, "chat", CHAT_AT, 4),
                _row(TrendHour, entity, "news", T, 3),
                _row(TrendHour, entity, "chat", T + timedelta(hours=1), 4),
                Entity(key=entity, name=f"Both {unique}", aliases=[], tickers=[], case_sensitive_aliases=[]),
            ]
        )
    yield entity
    async with sessions.begin() as s:  # later tests (the browser's) see their own latest data
        for table in (TrendMinute, TrendHour):
            await s.execute(delete(table).where(table.entity == entity))
        await s.execute(delete(Entity).where(Entity.key == entity))


async def test_the_latest_bucket_of_all_streams_is_the_latest_of_either(
    sessions: async_sessionmaker[AsyncSession], two_streams: str
) -> None:
    async with sessions() as session:
        assert await latest_trend_bucket(session, None, "minute") == CHAT_AT
        assert await latest_trend_bucket(session, "chat", "minute") == CHAT_AT
        assert await latest_trend_bucket(session, "news", "minute") == NEWS_AT
        assert await latest_trend_bucket(session, None, "hour") == T + timedelta(hours=1)
        assert await latest_trend_bucket(session, "news", "hour") == T


async def test_the_watchlist_of_all_streams_sums_both_up_to_the_latest_bucket(
    client: httpx.AsyncClient, two_streams: str
) -> None:
    r = await client.get("/v1/entities", params={"points": 6})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["buckets"][0].startswith("2040-05-06T10:00") and body["buckets"][-1].startswith("2040-05-06T10:05")
    (row,) = [e for e in body["entities"] if e["key"] == two_streams]
    assert row["stats"]["volume"] == [3, 0, 0, 0, 0, 4] and row["stats"]["total"] == 7
    news = (await client.get("/v1/entities", params={"points": 6, "stream": "news"})).json()
    (row,) = [e for e in news["entities"] if e["key"] == two_streams]
    assert news["buckets"][-1].startswith("2040-05-06T10:00") and row["stats"]["volume"][-1] == 3
