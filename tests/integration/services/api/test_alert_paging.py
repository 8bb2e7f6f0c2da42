"""``GET /v1/alerts`` pages: keyset on the sort order (``fired_at`` DESC, ``id`` DESC),
continued by the ``X-Next-Cursor`` a page gives; unknown parameters and bad cursors are
refused instead of silently answering the first page again."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from integration.services.api.helpers import assert_error, insert_rule
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import Alert

pytestmark = pytest.mark.integration
AT = datetime(1961, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)  # older than the alerts other tests expect among the newest


async def _insert_ties(sessions: async_sessionmaker[AsyncSession], unique: str, count: int) -> list[str]:
    """``count`` alerts of one entity, all with the same window; ``fired_at`` shared by
    groups of 20 (ties the sort must break by id). Returns their ids, newest first."""
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    rows: list[tuple[datetime, str]] = []
    async with sessions.begin() as session:
        for n in range(count):
            alert_id, fired_at = f"pg-{unique}-{n:03d}", AT - timedelta(minutes=n // 20)
            rows.append((fired_at, alert_id))
            session.add(
                Alert(
                    id=alert_id,
                    rule_id=rule_id,
                    entity=f"e{unique}",
                    stream="news",
                    episode=AT + timedelta(seconds=n),
                    status="open",
                    severity="warning",
                    window_start=AT - timedelta(minutes=5),
                    window_end=AT,
                    fired_at=fired_at,
                    explanation={},
                    model_version="test-1",
                )
            )
    return [alert_id for _, alert_id in sorted(rows, reverse=True)]


async def test_every_alert_is_reached_page_by_page(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """60 alerts with one window and tied fire times, 25 a page: 25, 25, 10, each once, in
    order. ``offset``, ``before`` and ``to`` reached none of the last 10."""
    expected = await _insert_ties(sessions, unique, 60)
    seen: list[str] = []
    params: dict[str, str] = {"entity": f"e{unique}", "limit": "25"}
    sizes = []
    while True:
        r = await client.get("/v1/alerts", params=params)
        assert r.status_code == 200, r.text
        page = [a["id"] for a in r.json()]
        sizes.append(len(page))
        seen += page
        token = r.headers.get("X-Next-Cursor")
        if token is None:
            assert "Link" not in r.headers
            break
        link = r.headers["Link"]
        assert link.endswith('>; rel="next"'), link
        assert dict(parse_qsl(urlsplit(link[1:].split(">")[0]).query)) == {**params, "cursor": token}
        params = {**params, "cursor": token}
        assert len(sizes) < 5, "no end of pages"
    assert sizes == [25, 25, 10]
    assert seen == expected


async def test_a_full_last_page_gives_no_cursor_and_filters_apply_across_pages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    expected = await _insert_ties(sessions, unique, 40)
    r = await client.get("/v1/alerts", params={"entity": f"e{unique}", "limit": "40"})
    assert [a["id"] for a in r.json()] == expected and "X-Next-Cursor" not in r.headers
    first = await client.get("/v1/alerts", params={"entity": f"e{unique}", "limit": "30"})
    rest = await client.get(
        "/v1/alerts", params={"entity": f"e{unique}", "limit": "30", "cursor": first.headers["X-Next-Cursor"]}
    )
    assert [a["id"] for a in rest.json()] == expected[30:] and "X-Next-Cursor" not in rest.headers
    assert (
        await client.get("/v1/alerts", params={"entity": "other", "cursor": first.headers["X-Next-Cursor"]})
    ).json() == []


@pytest.mark.parametrize(
    "query",
    [
        {"offset": "50"},
        {"before": "2031-05-06T07:08:09Z"},
        {"offset": "50", "page": "2", "limit": "10"},
        {"Limit": "10"},
    ],
)
async def test_unknown_query_parameters_are_refused_by_name(client: httpx.AsyncClient, query: dict[str, str]) -> None:
    err = assert_error(await client.get("/v1/alerts", params=query), 422, "validation_error")
    unknown = sorted(k for k in query if k != "limit")
    assert err["details"] == [
        {"loc": ["query", name], "message": "unknown query parameter", "type": "extra_forbidden"} for name in unknown
    ]
    assert all(name in err["message"] for name in unknown)


def _token(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "%%%",
        _token("garbage"),
        _token("2031-05-06T07:08:09|al-1"),  # naive
        _token("2031-05-06T07:08:09+00:00"),  # no id
        _token("2031-05-06T07:08:09+00:00|"),
        _token("0001-01-01T00:00:00+14:00|al-1"),  # out of range
        _token("2031-05-06T07:08:09+00:00|a\x00b"),
        _token("2031-05-06T07:08:09+00:00|" + "x" * 65),
        base64.urlsafe_b64encode(b"\xff\xfe|x").decode(),
        "x" * 201,
    ],
)
async def test_a_malformed_cursor_is_refused(client: httpx.AsyncClient, cursor: str) -> None:
    err = assert_error(await client.get("/v1/alerts", params={"cursor": cursor}), 422, "validation_error")
    assert err["details"][0]["loc"] == ["query", "cursor"]
