"""POST /v1/events produces validated events to real Kafka topics (unique prefix per test)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aiokafka.errors import (
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    TopicAuthorizationFailedError,
)
from integration.services.api.helpers import assert_error, bearer

from services.api.app import build_app
from services.api.config import ApiSettings
from services.api.deps import Deps
from shared.kafka.clients import ensure_topics, make_consumer
from shared.stack import manager
from shared.stack.settings import StackSettings

pytestmark = pytest.mark.integration


async def _consume(settings: ApiSettings, topics: list[str], expect: int, unique: str) -> list[dict[str, Any]]:
    consumer = make_consumer(settings.kafka, *topics, group_id=f"g{unique}", client_id="api-test")
    await consumer.start()
    got: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < expect:
                batch = await consumer.getmany(timeout_ms=500)
                got += [
                    {"topic": r.topic, "key": r.key, **json.loads(r.value or b"{}")}
                    for rs in batch.values()
                    for r in rs
                ]
        extra = await consumer.getmany(timeout_ms=1000)  # nothing more arrives
        got += [json.loads(r.value or b"{}") for rs in extra.values() for r in rs]
    finally:
        await consumer.stop()
    return got


async def test_events_are_validated_then_produced(
    client: httpx.AsyncClient, api_settings: ApiSettings, keys: dict[str, str], unique: str
) -> None:
    t = api_settings.topics
    await ensure_topics(api_settings.kafka, [t.news_raw, t.chat_raw], partitions=1)
    auth = bearer(keys["write"])
    invalid = {
        "events": [
            {"stream": "news", "text": "fine"},
            {"stream": "news", "text": "   "},
            {"stream": "chat", "text": "hi"},
            {"stream": "tv", "text": "x"},
            {"stream": "news", "text": "x", "event_time": "2026-01-01T00:00:00"},
        ]
    }
    err = assert_error(await client.post("/v1/events", json=invalid, headers=auth), 422, "validation_error")
    locs = {tuple(d["loc"]) for d in err["details"]}
    assert ("body", "events", 1, "text") in locs
    assert ("body", "events", 2, "conversation_id") in locs
    assert ("body", "events", 3, "stream") in locs
    assert ("body", "events", 4, "event_time") in locs
    assert not any(loc[2] == 0 for loc in locs)
    assert "nothing was produced" in err["message"]

    good = {
        "events": [
            {"stream": "news", "id": f"n-{unique}", "text": "Acme shares slump", "event_time": "2026-01-02T03:04:05Z"},
            {"stream": "chat", "text": "my card was declined", "conversation_id": f"c-{unique}"},
        ]
    }
    r = await client.post("/v1/events", json=good, headers=auth)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 2 and body["ids"][0] == f"n-{unique}" and len(body["ids"][1]) == 32
    records = await _consume(api_settings, [t.news_raw, t.chat_raw], 2, unique)
    assert len(records) == 2  # the invalid batch produced nothing
    by_topic = {r["topic"]: r for r in records}
    assert by_topic[t.news_raw]["id"] == f"n-{unique}" and by_topic[t.news_raw]["key"] == f"n-{unique}".encode()
    assert by_topic[t.chat_raw]["key"] == f"c-{unique}".encode() and by_topic[t.chat_raw]["stream"] == "chat"


async def test_size_limits(
    client: httpx.AsyncClient, api_settings: ApiSettings, keys: dict[str, str], make_client: Any
) -> None:
    auth = bearer(keys["write"])
    big = {"events": [{"stream": "news", "text": "x" * (api_settings.max_body_bytes + 10)}]}
    err = assert_error(await client.post("/v1/events", json=big, headers=auth), 413, "payload_too_large")
    assert err["details"] == [{"limit_bytes": api_settings.max_body_bytes}]

    async def chunks() -> Any:
        for _ in range(3):
            yield b"x" * (api_settings.max_body_bytes // 2)

    chunked = await client.post("/v1/events", content=chunks(), headers={**auth, "content-type": "application/json"})
    assert_error(chunked, 413, "payload_too_large")
    few = api_settings.model_copy(update={"max_events_per_request": 2})
    async with make_client(few) as c:
        many = {"events": [{"stream": "news", "text": f"t{i}"} for i in range(3)]}
        assert_error(await c.post("/v1/events", json=many, headers=auth), 413)
    assert_error(await client.post("/v1/events", json={"events": []}, headers=auth), 422)
    assert_error(await client.post("/v1/events", json={"events": [{"stream": "news", "text": "x"}]}), 401)
    # With a larger body limit, an event Kafka cannot carry in one message is refused
    # as that item's error (before: Kafka's refusal became "unavailable, retry later").
    roomy = api_settings.model_copy(update={"max_body_bytes": 4 * 1024 * 1024})
    async with make_client(roomy) as c:
        huge = {"events": [{"stream": "news", "text": "ok"}, {"stream": "news", "text": "é" * 600_000}]}
        err = assert_error(await c.post("/v1/events", json=huge, headers=auth), 422, "validation_error")
    assert [d["loc"] for d in err["details"]] == [["body", "events", 1]]
    assert err["details"][0]["type"] == "EventTooLarge" and "1,200,1" in err["details"][0]["message"]


async def test_a_broker_outage_answers_503_instead_of_holding_the_request(
    client: httpx.AsyncClient,
    make_client: Callable[[ApiSettings], httpx.AsyncClient],
    api_settings: ApiSettings,
    keys: dict[str, str],
    unique: str,
) -> None:
    t = api_settings.topics
    await ensure_topics(api_settings.kafka, [t.news_raw, t.chat_raw], partitions=1)
    headers = bearer(keys["write"])

    def body(i: int) -> dict[str, Any]:
        return {"events": [{"stream": "news", "id": f"down-{unique}-{i}", "text": "ACME shares slump"}]}

    assert (await client.post("/v1/events", json=body(0), headers=headers)).status_code == 202
    stack = StackSettings()
    short = make_client(api_settings.model_copy(update={"produce_timeout_s": 2.0}))
    await asyncio.to_thread(manager.down, stack, only=["kafka"])
    try:
        async with asyncio.timeout(60):  # before the fix the request waited for the broker, however long
            response = await short.post("/v1/events", json=body(1), headers=headers)
    finally:
        up = await asyncio.to_thread(manager.up, stack, only=["kafka"])
        await short.aclose()
    assert up.ok, up
    assert_error(response, 503, "kafka_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert "same event ids" in response.json()["error"]["message"]
    # The client retries with the same id once the broker is back.
    assert (await client.post("/v1/events", json=body(1), headers=headers)).status_code == 202
    got = await _consume(api_settings, [t.news_raw], expect=2, unique=unique)
    # The timed-out attempt may still have been delivered: the same id, never a new one.
    assert {g["id"] for g in got} == {f"down-{unique}-0", f"down-{unique}-1"}


async def test_a_batch_kafka_did_not_acknowledge_answers_every_id_so_a_retry_counts_once(
    client: httpx.AsyncClient,
    make_client: Callable[[ApiSettings], httpx.AsyncClient],
    api_settings: ApiSettings,
    keys: dict[str, str],
    unique: str,
) -> None:
    """Before, the 503 said nothing was acknowledged and gave no ids, while the batch may
    have been delivered in part: a retry of an item without an id got a new one and was
    counted twice. A produce timeout too short for any acknowledgement stands in for a
    slow broker (no outage needed)."""
    t = api_settings.topics
    await ensure_topics(api_settings.kafka, [t.news_raw], partitions=1)
    headers = bearer(keys["write"])
    warm = {"events": [{"stream": "news", "id": f"warm-{unique}", "text": "Acme shares flat"}]}
    assert (await client.post("/v1/events", json=warm, headers=headers)).status_code == 202  # producer started
    items = [
        {"stream": "news", "id": f"given-{unique}", "text": "Acme shares slump"},
        {"stream": "news", "text": "BP profit falls"},
    ]
    async with make_client(api_settings.model_copy(update={"produce_timeout_s": 1e-6})) as short:
        response = await short.post("/v1/events", json={"events": items}, headers=headers)
    err = assert_error(response, 503, "kafka_unavailable")
    assert "some may have been delivered" in err["message"] and "same event ids" in err["message"]
    assert [d["loc"] for d in err["details"]] == [["body", "events", 0, "id"], ["body", "events", 1, "id"]]
    ids = [d["id"] for d in err["details"]]
    assert ids[0] == f"given-{unique}" and len(ids[1]) == 32  # the one the server assigned
    retry = {"events": [{**item, "id": i} for item, i in zip(items, ids, strict=True)]}
    accepted = await client.post("/v1/events", json=retry, headers=headers)
    assert accepted.status_code == 202 and accepted.json()["ids"] == ids, accepted.text
    got = await _consume(api_settings, [t.news_raw], expect=3, unique=unique)
    # whatever the timed-out attempt delivered carries the ids the client retried with
    assert {g["id"] for g in got} == {f"warm-{unique}", *ids}


async def test_an_id_twice_in_one_stream_is_refused_naming_the_first_item(
    client: httpx.AsyncClient, api_settings: ApiSettings, keys: dict[str, str], unique: str
) -> None:
    """Before, both items got 202 (`ids: ["x1", "x1"]`) and the pipeline, which counts
    an (id, stream) pair once, silently dropped the second."""
    t = api_settings.topics
    await ensure_topics(api_settings.kafka, [t.news_raw, t.chat_raw], partitions=1)
    auth = bearer(keys["write"])
    same = f"dup-{unique}"
    twice = {
        "events": [
            {"stream": "news", "id": same, "text": "Acme shares slump"},
            {"stream": "news", "id": same, "text": "BP profit falls"},
            {"stream": "chat", "id": same, "text": "my card was declined", "conversation_id": f"c-{unique}"},
            {"stream": "news", "id": same, "text": "Acme shares rebound"},
        ]
    }
    err = assert_error(await client.post("/v1/events", json=twice, headers=auth), 422, "validation_error")
    assert [d["loc"] for d in err["details"]] == [["body", "events", 1, "id"], ["body", "events", 3, "id"]]
    assert all(d["type"] == "duplicate_id" and "item 0" in d["message"] for d in err["details"])
    assert "2 of 4" in err["message"] and "nothing was produced" in err["message"]
    # the same id in two streams is two events
    accepted = await client.post("/v1/events", json={"events": [twice["events"][0], twice["events"][2]]}, headers=auth)
    assert accepted.status_code == 202 and accepted.json()["ids"] == [same, same], accepted.text
    got = await _consume(api_settings, [t.news_raw, t.chat_raw], expect=2, unique=unique)
    assert sorted((g["stream"], g["text"]) for g in got) == [
        ("chat", "my card was declined"),
        ("news", "Acme shares slump"),
    ]


async def test_a_body_not_sent_as_json_is_415_naming_both_media_types(
    client: httpx.AsyncClient, api_settings: ApiSettings, keys: dict[str, str], unique: str
) -> None:
    """Before, a JSON body sent as text/plain, as a form (`curl -d`) or with no
    Content-Type got 422 "Input should be a valid dictionary or object", which blames
    the body's content."""
    await ensure_topics(api_settings.kafka, [api_settings.topics.news_raw], partitions=1)
    auth = bearer(keys["write"])
    body = json.dumps({"events": [{"stream": "news", "id": f"ct-{unique}", "text": "Acme shares slump"}]})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        response = await client.post("/v1/events", content=body, headers={**auth, "content-type": content_type})
        err = assert_error(response, 415, "unsupported_media_type")
        assert content_type in err["message"] and "application/json" in err["message"]
        assert err["details"] == [
            {"loc": ["header", "content-type"], "received": content_type, "expected": "application/json"}
        ]
    form = await client.post("/v1/events", data={"events": "x"}, headers=auth)  # what `curl -d` sends
    assert_error(form, 415, "unsupported_media_type")
    bare = assert_error(await client.post("/v1/events", content=body, headers=auth), 415, "unsupported_media_type")
    assert "without a Content-Type" in bare["message"] and bare["details"][0]["received"] is None
    assert_error(await client.post("/v1/events", content=body, headers={"content-type": "text/plain"}), 401)
    for content_type in ("application/json; charset=utf-8", "application/vnd.tonewatch+json"):
        ok = await client.post("/v1/events", content=body, headers={**auth, "content-type": content_type})
        assert ok.status_code == 202, ok.text
    answers = (await client.get("/openapi.json")).json()["paths"]["/v1/events"]["post"]["responses"]
    assert answers["415"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorDocument"}


async def test_a_record_the_topic_refuses_as_too_large_is_413_without_retry_after(
    client: httpx.AsyncClient, api_settings: ApiSettings, keys: dict[str, str], unique: str
) -> None:
    """A raw topic whose `max.message.bytes` is below the API's own event limit: the
    broker refuses the record (MessageSizeTooLargeError). Before, the answer was 503
    `kafka_unavailable` with Retry-After, and a client retried the same record forever."""
    t = api_settings.topics
    await ensure_topics(api_settings.kafka, [t.news_raw], partitions=1, configs={"max.message.bytes": "2000"})
    await ensure_topics(api_settings.kafka, [t.chat_raw], partitions=1)
    items = [
        {"stream": "chat", "id": f"small-{unique}", "text": "my card was declined", "conversation_id": f"c-{unique}"},
        {"stream": "news", "id": f"big-{unique}", "text": "Acme shares slump " * 200},
    ]
    response = await client.post("/v1/events", json={"events": items}, headers=bearer(keys["write"]))
    err = assert_error(response, 413, "record_too_large")
    assert "retry-after" not in response.headers
    assert "event(s) 1 " in err["message"] and "cannot succeed" in err["message"]
    assert "may have been delivered" in err["message"] and "same event ids" in err["message"]
    assert err["details"] == [
        {"loc": ["body", "events", 0, "id"], "id": f"small-{unique}"},
        {"loc": ["body", "events", 1, "id"], "id": f"big-{unique}", "error": "MessageSizeTooLargeError"},
    ]
    got = await _consume(api_settings, [t.chat_raw, t.news_raw], expect=1, unique=unique)
    assert [g["id"] for g in got] == [f"small-{unique}"]
    # The shared producer goes on: the next event to the same partition is delivered.
    after = {"stream": "news", "id": f"after-{unique}", "text": "Acme shares recover"}
    response = await client.post("/v1/events", json={"events": [after]}, headers=bearer(keys["write"]))
    assert response.status_code == 202, response.text
    got = await _consume(api_settings, [t.chat_raw, t.news_raw], expect=2, unique=f"{unique}-again")
    assert sorted(g["id"] for g in got) == sorted([f"small-{unique}", f"after-{unique}"])


class _RefusingProducer:
    """Stands in for aiokafka's producer: each send fails with ``error`` (raised by
    ``send`` itself when ``at_send``, else through the record's future)."""

    def __init__(self, error: Exception, *, at_send: bool = False) -> None:
        self.error = error
        self.at_send = at_send

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic: str, value: bytes, *, key: bytes) -> asyncio.Future[Any]:
        if self.at_send:
            raise self.error
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_exception(self.error)
        return future


@pytest.mark.parametrize(
    ("error", "at_send", "status", "code"),
    [
        (TopicAuthorizationFailedError("raw"), False, 502, "kafka_refused"),
        (OutOfOrderSequenceNumber(), False, 502, "kafka_refused"),
        (MessageSizeTooLargeError("The message is 3000000 bytes"), True, 413, "record_too_large"),
        (KafkaTimeoutError(), True, 503, "kafka_unavailable"),  # no metadata in time: retriable
        (NotLeaderForPartitionError(), False, 503, "kafka_unavailable"),
    ],
)
async def test_kafka_errors_a_retry_cannot_fix_answer_without_retry_after(
    deps: Deps,
    api_settings: ApiSettings,
    keys: dict[str, str],
    error: Exception,
    at_send: bool,
    status: int,
    code: str,
) -> None:
    """Error classification on the real app (keys in the real PostgreSQL) with a producer
    raising aiokafka's own error classes. Before, every KafkaError answered 503 "retry later"."""
    fake = _RefusingProducer(error, at_send=at_send)
    refusing = Deps(sessions=deps.sessions, redis=deps.redis, registry=deps.registry, new_producer=lambda: fake)
    app = build_app(api_settings, refusing)
    items = [{"stream": "news", "id": "a", "text": "Acme shares slump"}, {"stream": "news", "text": "BP falls"}]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as c:
        response = await c.post("/v1/events", json={"events": items}, headers=bearer(keys["write"]))
    err = assert_error(response, status, code)
    assert ("retry-after" in response.headers) == (status == 503)
    assert [d["loc"] for d in err["details"]] == [["body", "events", 0, "id"], ["body", "events", 1, "id"]]
    assert err["details"][0]["id"] == "a" and len(err["details"][1]["id"]) == 32
    # a send that raises stops the batch: only item 0 was tried
    refused = [0] if at_send else [0, 1]
    assert [i for i, d in enumerate(err["details"]) if d.get("error") == type(error).__name__] == refused
    if status != 503:
        assert "event(s) " + ", ".join(map(str, refused)) in err["message"]
        assert "may have been delivered" in err["message"]
