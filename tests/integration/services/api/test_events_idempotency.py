"""POST /v1/events with an ``Idempotency-Key`` on real Kafka: a retried request sends its
events again under the same ids, so the pipeline (which keeps one event per id) counts
them once; another key, caller or body gets other ids; without the header ids are random."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from integration.services.api.helpers import assert_error, bearer

from services.api.config import ApiSettings
from shared.kafka.clients import ensure_topics, make_consumer

pytestmark = pytest.mark.integration


def batch(unique: str) -> dict[str, Any]:
    return {
        "events": [
            {"stream": "news", "text": "Acme shares slump after profit warning"},
            {"stream": "news", "text": "Acme shares slump after profit warning"},
            {"stream": "chat", "text": "my card was declined", "conversation_id": f"c-{unique}"},
            {"stream": "news", "id": f"own-{unique}", "text": "Globex names a new chief"},
        ]
    }


async def raw_ids(settings: ApiSettings, expect: int, unique: str) -> list[str]:
    """The ids of every record on the raw topics (waits for ``expect``, then for strays)."""
    t = settings.topics
    consumer = make_consumer(settings.kafka, t.news_raw, t.chat_raw, group_id=f"g{unique}", client_id="api-test")
    await consumer.start()
    got: list[str] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < expect:
                records = (await consumer.getmany(timeout_ms=500)).values()
                got += [json.loads(r.value or b"{}")["id"] for rs in records for r in rs]
        extra = (await consumer.getmany(timeout_ms=1000)).values()
        got += [json.loads(r.value or b"{}")["id"] for rs in extra for r in rs]
    finally:
        await consumer.stop()
    return got


async def post(client: httpx.AsyncClient, body: dict[str, Any], key: str, idempotency: str | None) -> list[str]:
    headers = bearer(key) | ({"Idempotency-Key": idempotency} if idempotency is not None else {})
    r = await client.post("/v1/events", json=body, headers=headers)
    assert r.status_code == 202, r.text
    ids: list[str] = r.json()["ids"]
    return ids


async def test_a_retry_with_the_same_idempotency_key_sends_the_same_ids(
    client: httpx.AsyncClient, api_settings: ApiSettings, keys: dict[str, str], unique: str
) -> None:
    """A client whose request timed out sends it again: before, the items without an id
    got new random ids and the pipeline counted them twice."""
    t = api_settings.topics
    await ensure_topics(api_settings.kafka, [t.news_raw, t.chat_raw], partitions=1)
    first = await post(client, batch(unique), keys["write"], f"order-{unique}")
    again = await post(client, batch(unique), keys["write"], f"order-{unique}")
    assert again == first
    assert all(i.startswith("idem:") for i in first[:3]) and first[3] == f"own-{unique}"
    assert len(set(first)) == 4  # two equal items are still two events
    on_kafka = await raw_ids(api_settings, 8, unique)
    assert Counter(on_kafka) == {i: 2 for i in first}  # each event twice under one id: counted once


async def test_a_retry_after_a_503_with_the_same_key_and_body_is_counted_once(
    client: httpx.AsyncClient,
    make_client: Callable[[ApiSettings], httpx.AsyncClient],
    api_settings: ApiSettings,
    keys: dict[str, str],
    unique: str,
) -> None:
    """The client retries the body it sent, not the ids of the 503's details. A produce
    timeout too short for any acknowledgement stands in for a slow broker."""
    t = api_settings.topics
    await ensure_topics(api_settings.kafka, [t.news_raw, t.chat_raw], partitions=1)
    await post(client, {"events": [{"stream": "news", "id": f"warm-{unique}", "text": "flat"}]}, keys["write"], None)
    headers = bearer(keys["write"]) | {"Idempotency-Key": f"order-{unique}"}
    async with make_client(api_settings.model_copy(update={"produce_timeout_s": 1e-6})) as short:
        response = await short.post("/v1/events", json=batch(unique), headers=headers)
    err = assert_error(response, 503, "kafka_unavailable")
    ids = [d["id"] for d in err["details"]]
    assert await post(client, batch(unique), keys["write"], f"order-{unique}") == ids
    # whatever the timed-out attempt delivered carries the ids of the retry
    assert set(await raw_ids(api_settings, 5, unique)) == {f"warm-{unique}", *ids}


async def test_a_retry_without_the_item_a_413_refused_with_the_same_key_is_counted_once(
    client: httpx.AsyncClient, api_settings: ApiSettings, keys: dict[str, str], unique: str
) -> None:
    """After a 413 the client drops the item the topic refused as too large and sends the
    rest again with the same key. Before, the items after the refused one got new ids
    (the index was hashed), and those the first attempt delivered were counted twice."""
    t = api_settings.topics
    await ensure_topics(api_settings.kafka, [t.news_raw], partitions=1, configs={"max.message.bytes": "2000"})
    await ensure_topics(api_settings.kafka, [t.chat_raw], partitions=1)
    chat = {"stream": "chat", "text": "my card was declined", "conversation_id": f"c-{unique}"}
    big = {"stream": "news", "text": "Acme shares slump " * 200}  # under the API's limit, over the topic's
    items = [chat, big, dict(chat), {**chat, "text": "where is my refund"}]
    headers = bearer(keys["write"]) | {"Idempotency-Key": f"order-{unique}"}
    response = await client.post("/v1/events", json={"events": items}, headers=headers)
    err = assert_error(response, 413, "record_too_large")
    assert [d.get("error") for d in err["details"]] == [None, "MessageSizeTooLargeError", None, None]
    first = [d["id"] for d in err["details"]]
    again = await post(client, {"events": [items[0], *items[2:]]}, keys["write"], f"order-{unique}")
    assert again == [first[0], *first[2:]] and len(set(again)) == 3  # the two equal items are still two
    on_kafka = await raw_ids(api_settings, 6, unique)
    assert Counter(on_kafka) == {i: 2 for i in again}  # each event twice under one id: counted once


async def test_another_key_caller_or_body_gets_other_ids_and_no_header_random_ones(
    client: httpx.AsyncClient, api_settings: ApiSettings, keys: dict[str, str], unique: str
) -> None:
    t = api_settings.topics
    await ensure_topics(api_settings.kafka, [t.news_raw, t.chat_raw], partitions=1)
    body = batch(unique)
    first = await post(client, body, keys["write"], f"order-{unique}")
    other_key = await post(client, body, keys["write"], f"order-{unique}-2")
    other_caller = await post(client, body, keys["admin"], f"order-{unique}")  # admin implies write
    body["events"][0]["text"] = "Acme shares soar after profit beat"
    other_body = await post(client, body, keys["write"], f"order-{unique}")
    for other in (other_key, other_caller):
        assert not set(other[:3]) & set(first[:3]) and other[3] == first[3]
    # Only the changed item is a new event; its unchanged twin now comes first of its content, so it has that id.
    assert other_body[0] not in first and other_body[1:] == [first[0], *first[2:]]
    plain = [await post(client, batch(unique), keys["write"], None) for _ in range(2)]
    assert all(len(i) == 32 and not i.startswith("idem:") for ids in plain for i in ids[:3])
    assert not set(plain[0][:3]) & set(plain[1][:3])
    on_kafka = await raw_ids(api_settings, 6 * 4, unique)
    assert Counter(on_kafka) == Counter([*first, *other_key, *other_caller, *other_body, *plain[0], *plain[1]])


async def test_a_malformed_idempotency_key_is_422(client: httpx.AsyncClient, keys: dict[str, str], unique: str) -> None:
    headers = bearer(keys["write"]) | {"Idempotency-Key": "order 42"}
    err = assert_error(await client.post("/v1/events", json=batch(unique), headers=headers), 422, "validation_error")
    assert [d["loc"] for d in err["details"]] == [["header", "idempotency-key"]]
