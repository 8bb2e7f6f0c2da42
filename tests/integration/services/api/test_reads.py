"""Trends, watchlist with sparkline stats, entity messages and routing volumes
from rows inserted into the real tables."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from integration.services.api.helpers import assert_error, bearer, insert_alert, insert_rule
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import Entity, RoutingMinute, ScoredEventRow, TrendHour, TrendMinute

pytestmark = pytest.mark.integration
T0 = datetime(2031, 3, 4, 10, 0, tzinfo=UTC)  # later than anything other tests insert


def _bucket(
    table: type[TrendMinute] | type[TrendHour],
    entity: str,
    at: datetime,
    version: str,
    counts: tuple[int, int, int],
    score: float,
    conf: float,
    stream: str = "news",
) -> TrendMinute | TrendHour:
    neg, neu, pos = counts
    return table(
        stream=stream,
        entity=entity,
        bucket=at,
        model_version=version,
        count=neg + neu + pos,
        negative=neg,
        neutral=neu,
        positive=pos,
        score_sum=score,
        confidence_sum=conf,
    )


@pytest.fixture
async def trend_rows(sessions: async_sessionmaker[AsyncSession], unique: str) -> AsyncIterator[str]:
    """Rows of one entity, removed afterwards so later tests (the browser's) see their own latest data."""
    entity = f"ent{unique}"
    async with sessions.begin() as s:
        s.add_all(
            [
                _bucket(TrendMinute, entity, T0, "v1", (2, 1, 1), -0.8, 3.2),
                _bucket(TrendMinute, entity, T0, "v2", (1, 0, 1), 0.1, 1.5),
                _bucket(TrendMinute, entity, T0 + timedelta(minutes=2), "v1", (0, 1, 3), 2.0, 3.0),
                _bucket(TrendMinute, entity, T0, "v1", (5, 0, 0), -4.0, 4.5, stream="chat"),
                _bucket(TrendHour, entity, T0, "v1", (3, 2, 4), 1.3, 7.7),
                Entity(key=entity, name=f"Entity {unique}", aliases=["Ent"], tickers=[], case_sensitive_aliases=[]),
            ]
        )
    yield entity
    async with sessions.begin() as s:
        for table in (TrendMinute, TrendHour):
            await s.execute(delete(table).where(table.entity == entity))
        await s.execute(delete(Entity).where(Entity.key == entity))
        await s.execute(delete(ScoredEventRow).where(ScoredEventRow.id.startswith(f"{entity}-")))


async def test_trends_sum_model_versions(client: httpx.AsyncClient, trend_rows: str) -> None:
    r = await client.get(
        "/v1/trends",
        params={
            "entity": trend_rows,
            "stream": "news",
            "from": T0.isoformat(),
            "to": (T0 + timedelta(minutes=5)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["granularity"] == "minute" and body["from"].startswith("2031-03-04T10:00")
    first, second = body["buckets"]
    assert first["count"] == 6 and (first["negative"], first["neutral"], first["positive"]) == (3, 1, 2)
    assert first["negative_share"] == pytest.approx(0.5)
    assert first["mean_score"] == pytest.approx(-0.7 / 6)
    assert first["mean_confidence"] == pytest.approx(4.7 / 6)
    assert second["bucket"].startswith("2031-03-04T10:02") and second["negative_share"] == 0


async def test_trends_fill_streams_and_hours(client: httpx.AsyncClient, trend_rows: str) -> None:
    window = {"from": T0.isoformat(), "to": (T0 + timedelta(minutes=3)).isoformat()}
    filled = (await client.get("/v1/trends", params={"entity": trend_rows, "fill": "true", **window})).json()
    assert [b["count"] for b in filled["buckets"]] == [11, 0, 4]  # both streams summed when stream is omitted
    assert filled["buckets"][1]["negative_share"] is None
    hours = (await client.get("/v1/trends", params={"entity": trend_rows, "granularity": "hour"})).json()
    assert [b["count"] for b in hours["buckets"]] == [9]


async def test_trends_default_window_ends_at_latest_data(client: httpx.AsyncClient, trend_rows: str) -> None:
    body = (await client.get("/v1/trends", params={"entity": trend_rows, "stream": "news", "points": 10})).json()
    assert body["to"].startswith("2031-03-04T10:03")
    assert [b["count"] for b in body["buckets"]] == [6, 4]


async def test_from_after_the_latest_data_is_empty_not_422(client: httpx.AsyncClient, trend_rows: str) -> None:
    later = T0 + timedelta(days=30)  # no trend or routing data this late: the window has none
    for granularity in ("minute", "hour"):
        params = {"entity": trend_rows, "from": later.isoformat(), "granularity": granularity}
        r = await client.get("/v1/trends", params=params)
        assert r.status_code == 200, r.text
        assert r.json()["buckets"] == [] and r.json()["from"].startswith("2031-04-03T10:00")
    r = await client.get("/v1/routing", params={"from": later.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["buckets"] == ["2031-04-03T10:00:00Z"] and all(q["count"] == 0 for q in r.json()["queues"])


async def test_to_between_boundaries_gives_exactly_points_buckets(client: httpx.AsyncClient, trend_rows: str) -> None:
    to = (T0 + timedelta(minutes=2, seconds=30)).isoformat()
    for granularity, points, last in (("minute", 120, "2031-03-04T10:02"), ("hour", 5, "2031-03-04T10:00")):
        params = {"entity": trend_rows, "to": to, "points": points, "fill": "true", "granularity": granularity}
        buckets = (await client.get("/v1/trends", params=params)).json()["buckets"]
        assert len(buckets) == points and buckets[-1]["bucket"].startswith(last)
    assert buckets[-1]["count"] == 9  # the bucket ``to`` falls in is still counted
    routing = (await client.get("/v1/routing", params={"to": to, "points": 30})).json()
    assert len(routing["buckets"]) == 30 and routing["buckets"][-1].startswith("2031-03-04T10:02")


async def test_trends_bad_queries_are_422(client: httpx.AsyncClient) -> None:
    err = assert_error(await client.get("/v1/trends", params={"granularity": "day"}), 422, "validation_error")
    assert err["details"][0]["loc"] == ["query", "granularity"]
    assert_error(await client.get("/v1/trends", params={"stream": "tv"}), 422)
    assert_error(await client.get("/v1/trends", params={"from": "yesterday"}), 422)
    same = T0.isoformat()
    assert_error(await client.get("/v1/trends", params={"from": same, "to": same}), 422)
    year = {"from": T0.isoformat(), "to": (T0 + timedelta(days=365)).isoformat()}
    assert_error(await client.get("/v1/trends", params=year), 422)


async def test_entities_list_with_sparklines(client: httpx.AsyncClient, trend_rows: str) -> None:
    r = await client.get(
        "/v1/entities", params={"stream": "news", "points": 4, "to": (T0 + timedelta(minutes=3)).isoformat()}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["buckets"]) == 4 and body["buckets"][0].startswith("2031-03-04T09:59")
    (row,) = [e for e in body["entities"] if e["key"] == trend_rows]
    assert row["stats"]["volume"] == [0, 6, 0, 4]
    assert row["stats"]["negative_share"] == [None, 0.5, None, 0.0]
    assert row["stats"]["total"] == 10 and row["stats"]["negative_share_total"] == pytest.approx(0.3)


async def test_entities_count_open_alerts_of_the_stream_asked_for(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], trend_rows: str
) -> None:
    rule_id = await insert_rule(sessions, f"rule-{trend_rows}")
    alerts = [("news", "open"), ("news", "resolved"), ("chat", "open"), ("chat", "acknowledged")]
    for i, (stream, status) in enumerate(alerts):
        at = T0 + timedelta(minutes=i)
        await insert_alert(
            sessions,
            alert_id=f"{trend_rows}-{i}",
            rule_id=rule_id,
            entity=trend_rows,
            at=at,
            status=status,
            stream=stream,
        )
    for stream, expected in (("news", 1), ("chat", 2), (None, 3)):
        params = {"stream": stream} if stream else {}
        body = (await client.get("/v1/entities", params=params)).json()
        (row,) = [e for e in body["entities"] if e["key"] == trend_rows]
        assert row["stats"]["open_alerts"] == expected, stream


async def test_entity_put_delete(client: httpx.AsyncClient, keys: dict[str, str], unique: str) -> None:
    key, auth = f"co{unique}", bearer(keys["write"])
    body = {
        "name": "Contoso",
        "aliases": ["Contoso"],
        "tickers": ["CTSO"],
        "case_sensitive_aliases": ["CT"],
        "group": "banks",
    }
    assert (await client.put(f"/v1/entities/{key}", json=body, headers=auth)).status_code == 201
    r = await client.put(f"/v1/entities/{key}", json={**body, "name": "Contoso Group"}, headers=auth)
    assert r.status_code == 200 and r.json()["name"] == "Contoso Group" and r.json()["group"] == "banks"
    listed = {e["key"]: e for e in (await client.get("/v1/entities")).json()["entities"]}
    assert listed[key]["tickers"] == ["CTSO"] and listed[key]["active"] is True
    assert (await client.delete(f"/v1/entities/{key}", headers=auth)).status_code == 204
    assert_error(await client.delete(f"/v1/entities/{key}", headers=auth), 404, "not_found")
    assert_error(await client.put("/v1/entities/_all", json=body, headers=auth), 422)
    assert_error(await client.put("/v1/entities/bad key", json=body, headers=auth), 422)
    err = assert_error(await client.put(f"/v1/entities/{key}", json={**body, "colour": "red"}, headers=auth), 422)
    assert err["details"][0]["loc"] == ["body", "colour"]


def _message(entity: str, i: int, p: float) -> ScoredEventRow:
    """Stored news message ``i`` about ``entity``, ``i`` seconds after T0, negative with probability ``p``."""
    return ScoredEventRow(
        id=f"{entity}-{i}",
        stream="news",
        event_time=T0 + timedelta(seconds=i),
        received_time=T0,
        entities=[entity, "_all"],
        text=f"message {i}",
        sentiment="negative" if p > 0.5 else "neutral",
        sentiment_confidence=p,
        sentiment_score=-p,
        negative_prob=p,
        model_version="v1",
    )


async def test_entity_messages_most_negative_first(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], trend_rows: str
) -> None:
    async with sessions.begin() as s:
        s.add_all(_message(trend_rows, i, p) for i, p in enumerate((0.2, 0.9, 0.6)))
    r = await client.get(f"/v1/entities/{trend_rows}/messages", params={"limit": 2})
    assert [m["text"] for m in r.json()] == ["message 1", "message 2"]


async def test_entity_messages_rank_the_whole_window(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], trend_rows: str
) -> None:
    """The most negative message is the window's oldest, behind 500 newer ones."""
    async with sessions.begin() as s:
        s.add_all(_message(trend_rows, i, 0.99 if i == 1 else 0.1) for i in range(502))
    window = {"from": (T0 + timedelta(seconds=1)).isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()}
    r = await client.get(f"/v1/entities/{trend_rows}/messages", params={**window, "limit": 3})
    assert r.status_code == 200, r.text
    assert [m["text"] for m in r.json()] == ["message 1", "message 501", "message 500"]
    latest = await client.get(f"/v1/entities/{trend_rows}/messages", params={"limit": 1})
    assert [m["text"] for m in latest.json()] == ["message 501"]  # no window: the latest 500 only


async def test_routing_volumes(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    t = datetime(2031, 5, 6, 7, 8, tzinfo=UTC)
    async with sessions.begin() as s:
        s.add_all(
            [
                RoutingMinute(bucket=t, queue="cards", count=5, priority=1),
                RoutingMinute(bucket=t + timedelta(minutes=1), queue="cards", count=2, priority=0),
                RoutingMinute(bucket=t, queue="human", count=1, priority=1),
            ]
        )
    params = {"from": t.isoformat(), "to": (t + timedelta(minutes=2)).isoformat()}
    body = (await client.get("/v1/routing", params=params)).json()
    queues = {q["queue"]: q for q in body["queues"]}
    assert body["queues"][0]["queue"] == "cards"
    assert queues["cards"]["count"] == 7 and queues["cards"]["volume"] == [5, 2] and queues["cards"]["priority"] == 1
    assert queues["human"]["count"] == 1 and queues["escalations"]["count"] == 0
    async with sessions.begin() as s:
        await s.execute(delete(RoutingMinute).where(RoutingMinute.bucket >= t))
