"""POST /v1/events: an item nested too deeply to write as one string (its
``Idempotency-Key`` id is derived from its content) is that item's 422, not a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tw_testing import app_client_known_key

from services.api import auth, routes_events
from services.api.errors import ApiError
from services.api.routes_events import validate_batch

WRITER = auth.KeyInfo(7, "w", "abcdefgh", ("write",), None, None)


def deep_item(depth: int) -> dict[str, Any]:
    """A news item with an unknown key ``n`` nested ``depth`` objects deep."""
    item: dict[str, Any] = {"stream": "news", "text": "Acme shares slump"}
    inner = item
    for _ in range(depth):
        inner["n"] = {}
        inner = inner["n"]
    return item


@pytest.mark.parametrize("idempotency", [None, ("7", "order-42")])
def test_a_deep_item_is_its_own_422_with_or_without_the_header(idempotency: tuple[str, str] | None) -> None:
    """Before, with the header, json.dumps of the item raised RecursionError (a 500)
    before the item was validated."""
    good = {"stream": "news", "text": "fine"}
    with pytest.raises(ApiError) as raised:
        validate_batch([good, deep_item(5000)], idempotency)
    assert raised.value.status_code == 422
    assert raised.value.details == [
        {"loc": ["body", "events", 1, "n"], "message": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]


def test_an_item_whose_content_cannot_be_written_never_gets_a_random_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were a valid item unwritable, a random id would break the header's promise (the
    same id on a retry): it is refused instead."""

    def unwritable(_: dict[str, Any]) -> str:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(routes_events, "canonical_content", unwritable)
    with pytest.raises(ApiError) as raised:
        validate_batch([{"stream": "news", "text": "fine", "id": "own"}, {"stream": "news", "text": "x"}], ("7", "k"))
    assert raised.value.status_code == 422
    assert [(d["loc"], d["type"]) for d in raised.value.details or []] == [(["body", "events", 1], "value_error")]
    assert validate_batch([{"stream": "news", "text": "x"}], None)  # without the header: not needed


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client_known_key(monkeypatch, WRITER) as c:
        yield c


async def test_through_the_app_a_deep_item_with_the_header_is_422(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """How deep a body FastAPI still reads but json.dumps no longer writes depends on the
    stack; a shallow item whose writing raises stands for it."""
    real = routes_events.canonical_content

    def deep_fails(item: dict[str, Any]) -> str:
        if "n" in item:
            raise RecursionError("maximum recursion depth exceeded while encoding a JSON object")
        return real(item)

    monkeypatch.setattr(routes_events, "canonical_content", deep_fails)
    r = await client.post("/v1/events", json={"events": [deep_item(3)]}, headers={"Idempotency-Key": "order-42"})
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["error"]["details"]] == [["body", "events", 0, "n"]]
