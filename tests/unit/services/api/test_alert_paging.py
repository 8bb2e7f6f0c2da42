"""The alert list's page cursor and query parameter check, and the stream's event ids
(pure logic; the routes on PostgreSQL are in the integration tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from services.api import routes_alerts
from services.api.alert_feed import AlertOut, FeedAlert, FeedItem, Resync
from services.api.app import build_app
from services.api.config import ApiSettings
from services.api.deps import make_deps
from services.api.errors import ApiError
from services.api.routes_alerts import LIST_PARAMS, Opening, alert_events, decode_cursor, encode_cursor

T = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _alert(alert_id: str, fired_at: datetime = T) -> AlertOut:
    return AlertOut(
        id=alert_id,
        rule_id=1,
        rule_name="r",
        entity="acme",
        stream="news",
        status="open",
        severity="warning",
        window_start=fired_at,
        window_end=fired_at,
        fired_at=fired_at,
        acknowledged_at=None,
        resolved_at=None,
        model_version="v1",
        explanation={},
    )


@pytest.mark.parametrize(
    ("alert_id", "fired_at"),
    [
        ("al-1", T),
        ("a|b|c", T),  # the separator inside an id
        ("ü" * 64, T.astimezone(timezone(timedelta(hours=-5)))),
    ],
)
def test_a_cursor_gives_back_the_place_of_the_alert_it_was_made_from(alert_id: str, fired_at: datetime) -> None:
    token = encode_cursor(_alert(alert_id, fired_at))
    assert token.isascii() and "=" not in token and "/" not in token and "+" not in token
    assert decode_cursor(token) == (fired_at, alert_id)
    assert decode_cursor(token)[0].microsecond == 678901


def test_a_made_up_cursor_is_a_422() -> None:
    with pytest.raises(ApiError) as caught:
        decode_cursor("bm90IGEgY3Vyc29y")  # base64 of "not a cursor"
    assert caught.value.status_code == 422 and caught.value.details[0]["loc"] == ["query", "cursor"]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(environment="test")
    deps = make_deps(settings)  # connects to nothing until a query runs
    try:
        app = build_app(settings, deps)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            yield c
    finally:
        await deps.aclose()


async def test_the_known_parameters_are_the_documented_ones(client: httpx.AsyncClient) -> None:
    """A parameter added to the route but not to ``LIST_PARAMS`` would be refused."""
    operation = (await client.get("/openapi.json")).json()["paths"]["/v1/alerts"]["get"]
    assert sorted(p["name"] for p in operation["parameters"] if p["in"] == "query") == sorted(LIST_PARAMS)
    assert {"X-Next-Cursor", "Link"} <= set(operation["responses"]["200"]["headers"])


class _Connected:
    async def is_disconnected(self) -> bool:
        return False


async def _events(start: Opening, items: list[FeedItem]) -> list[str]:
    queue: asyncio.Queue[FeedItem] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    request = _Connected()
    return [e async for e in alert_events(request, queue, start, heartbeat_s=60)]  # type: ignore[arg-type]


def _ids(events: list[str]) -> list[str | None]:
    return [next((line[4:] for line in e.splitlines() if line.startswith("id: ")), None) for e in events]


async def test_event_ids_are_cursors_that_never_go_back() -> None:
    """Each id is the larger of the cursor so far and the alert's own; a resync clears it."""
    items: list[FeedItem] = [
        FeedAlert.model_construct(**dict(_alert(f"a{n}")), cursor=cursor) for n, cursor in enumerate((5, 3, 8))
    ]
    events = await _events(Opening(["event: snapshot\n\n"], 4), [*items, Resync.FELL_BEHIND])
    assert _ids(events) == [None, None, "5", "5", "8", ""]
    assert events[-1] == 'id: \nevent: resync\ndata: {"reason":"fell_behind"}\n\n'
    assert '"cursor"' not in events[2]


async def test_an_opening_that_resyncs_ends_the_stream() -> None:
    events = await _events(Opening([routes_alerts.resync_event(Resync.INVALID_CURSOR)], None), [None])
    assert events == ["retry: 3000\n\n", 'id: \nevent: resync\ndata: {"reason":"invalid_last_event_id"}\n\n']
