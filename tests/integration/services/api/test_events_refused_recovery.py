"""POST /v1/events after the topic refused a record (larger than its ``max.message.bytes``):
the refusal leaves a gap in the shared idempotent producer's sequence for that partition,
so the API replaces the producer and the next events to the partition are delivered
(review finding: the tests fail on the code before the fix, where every later POST to
that partition answered 502 ``kafka_refused``, OutOfOrderSequenceNumber, until the API
restarted). The partition must have taken a record from the producer before the refusal:
the broker accepts any sequence from a producer it has no state for."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from integration.services.api.helpers import assert_error, bearer

from services.api.config import ApiSettings
from shared.kafka.clients import ensure_topics, make_consumer

pytestmark = pytest.mark.integration

TOPIC_LIMIT = 20_000
BIG_TEXT = "word " * 6_000  # 30,000 bytes: under the API's own event limit, over the topic's


async def _consumed_ids(settings: ApiSettings, expect: int, unique: str) -> list[str]:
    """The ids on the news topic once ``expect`` arrived (and a second passed with no more)."""
    consumer = make_consumer(settings.kafka, settings.topics.news_raw, group_id=f"g{unique}", client_id="api-test")
    await consumer.start()
    got: list[str] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < expect:
                batch = await consumer.getmany(timeout_ms=500)
                got += [json.loads(r.value or b"{}")["id"] for rs in batch.values() for r in rs]
        extra = await consumer.getmany(timeout_ms=1000)
        got += [json.loads(r.value or b"{}")["id"] for rs in extra.values() for r in rs]
    finally:
        await consumer.stop()
    return got


def _news(event_id: str, text: str = "Acme shares slump") -> dict[str, Any]:
    return {"stream": "news", "id": event_id, "text": text}


async def _post(client: httpx.AsyncClient, key: str, *items: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/events", json={"events": list(items)}, headers=bearer(key))


async def test_after_a_refused_record_the_next_event_to_its_partition_is_delivered(
    client: httpx.AsyncClient, api_settings: ApiSettings, keys: dict[str, str], unique: str
) -> None:
    topic = api_settings.topics.news_raw
    await ensure_topics(api_settings.kafka, [topic], partitions=1, configs={"max.message.bytes": str(TOPIC_LIMIT)})
    write = keys["write"]
    before = await _post(client, write, _news(f"before-{unique}"))
    assert before.status_code == 202, before.text
    err = assert_error(await _post(client, write, _news(f"big-{unique}", BIG_TEXT)), 413, "record_too_large")
    assert err["details"] == [
        {"loc": ["body", "events", 0, "id"], "id": f"big-{unique}", "error": "MessageSizeTooLargeError"}
    ]
    for n in range(3):
        after = await _post(client, write, _news(f"after{n}-{unique}"))
        assert after.status_code == 202, after.text
    got = await _consumed_ids(api_settings, 4, unique)
    assert sorted(got) == sorted([f"before-{unique}", *(f"after{n}-{unique}" for n in range(3))])


async def test_events_after_a_refused_one_in_the_same_request_are_delivered(
    client: httpx.AsyncClient, api_settings: ApiSettings, keys: dict[str, str], unique: str
) -> None:
    """Only the refused item is named in the 413: the items sent after it to its partition
    (refused as OutOfOrderSequenceNumber) go again on the new producer."""
    topic = api_settings.topics.news_raw
    await ensure_topics(api_settings.kafka, [topic], partitions=1, configs={"max.message.bytes": str(TOPIC_LIMIT)})
    items = [_news(f"a-{unique}"), _news(f"big-{unique}", BIG_TEXT), _news(f"b-{unique}"), _news(f"c-{unique}")]
    err = assert_error(await _post(client, keys["write"], *items), 413, "record_too_large")
    assert [d.get("error") for d in err["details"]] == [None, "MessageSizeTooLargeError", None, None], err
    assert "event(s) 1 " in err["message"], err["message"]
    next_one = await _post(client, keys["write"], _news(f"d-{unique}"))
    assert next_one.status_code == 202, next_one.text
    got = await _consumed_ids(api_settings, 4, unique)
    assert sorted(got) == sorted(f"{x}-{unique}" for x in "abcd")


async def test_concurrent_requests_around_a_refusal_are_delivered_or_retryable(
    client: httpx.AsyncClient, api_settings: ApiSettings, keys: dict[str, str], unique: str
) -> None:
    """Requests in flight on the shared producer when it is replaced are delivered, or
    answer 503 ``kafka_unavailable`` (Retry-After): never 502, and their retry succeeds."""
    topic = api_settings.topics.news_raw
    await ensure_topics(api_settings.kafka, [topic], partitions=1, configs={"max.message.bytes": str(TOPIC_LIMIT)})
    write = keys["write"]
    warm = await _post(client, write, _news(f"warm-{unique}"))
    assert warm.status_code == 202, warm.text
    small = [_news(f"s{n}-{unique}") for n in range(30)]
    answers = await asyncio.gather(
        *(_post(client, write, item) for item in small[:15]),
        _post(client, write, _news(f"big-{unique}", BIG_TEXT)),
        *(_post(client, write, item) for item in small[15:]),
    )
    assert_error(answers[15], 413, "record_too_large")
    retry = []
    for item, answer in zip(small, answers[:15] + answers[16:], strict=True):
        if answer.status_code != 202:
            assert_error(answer, 503, "kafka_unavailable")
            assert "retry-after" in answer.headers
            retry.append(item)
    for item in retry:
        again = await _post(client, write, item)
        assert again.status_code == 202, again.text
    got = await _consumed_ids(api_settings, 31, unique)
    assert set(got) == {f"warm-{unique}", *(i["id"] for i in small)}
