"""``GET /v1/entities`` refuses (422) a sparkline length whose buckets for every entity
would be over ``MAX_SPARKLINE_CELLS``, before reading the series."""

from __future__ import annotations

import httpx
import pytest
from integration.services.api.helpers import assert_error

from services.api import routes_entities

pytestmark = pytest.mark.integration


async def test_points_over_the_cap_for_this_watchlist_are_422(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = await client.get("/v1/entities", params={"points": 2})
    assert r.status_code == 200, r.text
    cap = (len(r.json()["entities"]) + 1) * 10  # other tests may add entities meanwhile: a margin
    monkeypatch.setattr(routes_entities, "MAX_SPARKLINE_CELLS", cap)
    assert (await client.get("/v1/entities", params={"points": 2})).status_code == 200
    err = assert_error(await client.get("/v1/entities", params={"points": 1440}), 422, "validation_error")
    [detail] = err["details"]
    assert detail["loc"] == ["query", "points"]
    assert detail["max_points"] == cap // (detail["entities"] + 1)
