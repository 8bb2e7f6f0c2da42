"""Time query parameters and ``event_time``: digits alone are refused (422), not read as
Unix seconds in 1970 (``from=20261201`` was 1970-08-23, ``"event_time": "2026"``
1970-01-01T00:33:46Z)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError
from tw_testing import app_client_known_key

from services.api import auth
from services.api.query import Instant

INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)
DIGITS = ["2026", "20261201", "1767225600", "-2026", "+2026", "2026.5", "2026.", ".5"]


@pytest.mark.parametrize("given", DIGITS)
def test_digits_alone_are_refused_with_a_hint(given: str) -> None:
    with pytest.raises(ValidationError, match=r"use ISO 8601 \(e\.g\. 2026-12-01T00:00:00Z\)"):
        INSTANT.validate_python(given)


@pytest.mark.parametrize(
    ("given", "utc"),
    [
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T00:00:00Z", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T01:00:00 01:00", datetime(2026, 12, 1, tzinfo=UTC)),
    ],
)
def test_iso_times_still_pass(given: str, utc: datetime) -> None:
    assert INSTANT.validate_python(given) == utc


WRITER = auth.KeyInfo(7, "w", "abcdefgh", ("write", "read"), None, None)


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client_known_key(monkeypatch, WRITER) as c:
        yield c


@pytest.mark.parametrize(
    "url",
    [
        "/v1/trends?from=20261201&to=20261202",
        "/v1/alerts?to=20261202",
        "/v1/entities/_all/messages?to=2026",
        "/v1/routing?from=1767225600",
    ],
)
async def test_a_read_with_digits_for_a_time_is_422(client: httpx.AsyncClient, url: str) -> None:
    r = await client.get(url)
    assert r.status_code == 422, r.text
    assert "use ISO 8601" in r.text


@pytest.mark.parametrize("event_time", ["2026", "1767225600", "20261201"])
async def test_an_event_time_of_digits_alone_is_422(client: httpx.AsyncClient, event_time: str) -> None:
    r = await client.post("/v1/events", json={"events": [{"stream": "news", "text": "x", "event_time": event_time}]})
    assert r.status_code == 422, r.text
    [detail] = r.json()["error"]["details"]
    assert detail["loc"] == ["body", "events", 0, "event_time"] and "use ISO 8601" in detail["message"]
