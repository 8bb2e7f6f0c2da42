"""POST /v1/events with an ``Idempotency-Key``: derived ids (pure), the header's 422 and
its OpenAPI entry (no broker: a refused header never reaches Kafka)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from tw_testing import app_client_known_key

from services.api import auth
from services.api.routes_events import validate_batch

BATCH: list[dict[str, Any]] = [
    {"stream": "news", "text": "Acme shares slump"},
    {"stream": "news", "text": "Acme shares slump"},  # the same content at another index: another event
    {"stream": "chat", "text": "card declined", "conversation_id": "c1"},
    {"stream": "news", "id": "own-1", "text": "kept"},
]


def ids(batch: list[dict[str, Any]], idempotency: tuple[str, str] | None) -> list[str]:
    return [e.id for e in validate_batch(batch, idempotency)]


def test_the_same_request_gets_the_same_ids() -> None:
    first = ids(BATCH, ("7", "order-42"))
    assert first == ids([dict(item) for item in BATCH], ("7", "order-42"))
    assert first[3] == "own-1"  # an item's own id is kept
    assert all(re.fullmatch(r"idem:[0-9a-f]{32}", i) for i in first[:3]) and len(set(first)) == 4
    assert ids([{"text": "Acme shares slump", "stream": "news"}], ("7", "k")) == ids(BATCH[:1], ("7", "k"))


@pytest.mark.parametrize(
    ("batch", "idempotency"),
    [
        (BATCH, ("7", "order-43")),  # another key
        (BATCH, ("8", "order-42")),  # another client with the same key
        (BATCH, ("anon", "order-42")),
        ([{**BATCH[0], "text": "Acme shares soar"}, *BATCH[1:]], ("7", "order-42")),  # another body
        ([{**BATCH[0], "source": "wire"}, *BATCH[1:]], ("7", "order-42")),
    ],
)
def test_another_key_caller_or_content_gets_another_id(
    batch: list[dict[str, Any]], idempotency: tuple[str, str]
) -> None:
    assert ids(batch, idempotency)[0] != ids(BATCH, ("7", "order-42"))[0]


RETRY: list[dict[str, Any]] = [
    {"stream": "chat", "text": "card declined", "conversation_id": "c1"},
    {"stream": "news", "text": "x" * 5000},  # the item a 413 refused
    {"stream": "chat", "text": "card declined", "conversation_id": "c1"},  # equal to item 0: another event
    {"stream": "news", "text": "Acme shares slump"},
    {"stream": "chat", "text": "Acme shares slump", "conversation_id": "c1"},
]


def test_an_item_keeps_its_id_when_another_item_is_left_out() -> None:
    """After a 413 or 502 the client drops the refused item and sends the rest again
    with the same key: before, every later item got a new id (the index was hashed) and
    those delivered by the first attempt were counted twice."""
    first = ids(RETRY, ("7", "order-42"))
    assert len(set(first)) == 5
    assert ids([RETRY[0], *RETRY[2:]], ("7", "order-42")) == [first[0], *first[2:]]
    assert ids(RETRY[3:], ("7", "order-42")) == first[3:]


def test_an_item_keeps_its_id_in_another_order() -> None:
    first = ids(RETRY, ("7", "order-42"))
    order = [4, 0, 3, 1, 2]  # the equal items 0 and 2 in their order: swapped, they swap their ids
    assert ids([RETRY[i] for i in order], ("7", "order-42")) == [first[i] for i in order]


def test_equal_items_get_distinct_ids_and_an_empty_id_is_no_content() -> None:
    item = {"stream": "news", "text": "Acme shares slump"}
    three = ids([item, dict(item), {"text": "Acme shares slump", "stream": "news"}], ("7", "k"))
    assert len(set(three)) == 3
    assert ids([{**item, "id": None}, {**item, "id": ""}, item], ("7", "k")) == three
    assert ids([item, {**item, "stream": "chat", "conversation_id": "c1"}], ("7", "k"))[0] == three[0]


def test_without_the_header_ids_are_random() -> None:
    first, again = ids(BATCH, None), ids(BATCH, None)
    assert all(len(i) == 32 and not i.startswith("idem:") for i in first[:3])
    assert not set(first[:3]) & set(again[:3]) and first[3] == again[3] == "own-1"


WRITER = auth.KeyInfo(7, "w", "abcdefgh", ("write",), None, None)


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client_known_key(monkeypatch, WRITER) as c:
        yield c


@pytest.mark.parametrize("key", [b"", b"a" * 101, b"two words", b"order/42", b"caf\xc3\xa9", b"a\tb"])
async def test_a_malformed_idempotency_key_is_422(client: httpx.AsyncClient, key: bytes) -> None:
    r = await client.post("/v1/events", json={"events": BATCH}, headers={b"Idempotency-Key": key})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_error" and err["message"]
    assert [d["loc"] for d in err["details"]] == [["header", "idempotency-key"]]


async def test_the_openapi_document_shows_the_header(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    validate(doc)
    params = {p["name"]: p for p in doc["paths"]["/v1/events"]["post"].get("parameters", [])}
    header = params["idempotency-key"]
    assert header["in"] == "header" and not header.get("required", False)
    assert "same ids" in header["description"]
    schema = header["schema"]["anyOf"][0]
    assert schema["pattern"] == r"^[A-Za-z0-9_.:-]{1,100}$"
