"""POST /v1/events: duplicate ids in a batch, JSON media types, and which Kafka errors
a retry can fix (aiokafka's own error classes; no broker)."""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    BrokerNotAvailableError,
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)

from services.api.errors import ApiError
from services.api.routes_events import is_json, not_delivered, retriable, validate_batch
from shared.events import RawEvent


def test_an_id_twice_in_a_stream_names_the_first_item() -> None:
    with pytest.raises(ApiError) as info:
        validate_batch(
            [
                {"stream": "news", "id": "x1", "text": "a"},
                {"stream": "chat", "id": "x1", "text": "b", "conversation_id": "c"},  # another stream: fine
                {"stream": "news", "id": "x1", "text": "c"},
                {"stream": "chat", "id": "x1", "text": "d", "conversation_id": "c"},
            ]
        )
    err = info.value
    assert err.status_code == 422 and "2 of 4" in err.message
    assert [(d["loc"], d["type"]) for d in err.details] == [
        (["body", "events", 2, "id"], "duplicate_id"),
        (["body", "events", 3, "id"], "duplicate_id"),
    ]
    assert "item 0" in err.details[0]["message"] and "item 1" in err.details[1]["message"]


def test_the_same_id_in_each_stream_is_two_events() -> None:
    events = validate_batch(
        [
            {"stream": "news", "id": "x1", "text": "a"},
            {"stream": "chat", "id": "x1", "text": "b", "conversation_id": "c"},
        ]
    )
    assert [(e.id, e.stream) for e in events] == [("x1", "news"), ("x1", "chat")]


@pytest.mark.parametrize(
    ("content_type", "json"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/problem+json", True),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
        ("text/json", False),
        ("json", False),
    ],
)
def test_json_media_types(content_type: str, json: bool) -> None:
    assert is_json(content_type) is json


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError(),
        ConnectionRefusedError(),
        KafkaTimeoutError(),
        KafkaConnectionError(),
        BrokerNotAvailableError(),
        NotLeaderForPartitionError(),
        RequestTimedOutError(),
    ],
)
def test_transient_errors_are_retriable(error: Exception) -> None:
    assert retriable(error)


@pytest.mark.parametrize(
    "error",
    [
        MessageSizeTooLargeError(),
        RecordListTooLargeError(),
        TopicAuthorizationFailedError(),
        OutOfOrderSequenceNumber(),
    ],
)
def test_refusals_are_final(error: Exception) -> None:
    assert not retriable(error)


def _events(n: int) -> list[RawEvent]:
    return validate_batch([{"stream": "news", "id": f"e{i}", "text": "t"} for i in range(n)])


def test_a_size_refusal_is_413_naming_the_item_and_no_retry_after() -> None:
    err = not_delivered(TimeoutError(), _events(3), {1: MessageSizeTooLargeError()}, 10.0)
    assert (err.status_code, err.code, err.headers) == (413, "record_too_large", None)
    assert "event(s) 1 " in err.message and "may have been delivered" in err.message
    assert [d.get("error") for d in err.details] == [None, "MessageSizeTooLargeError", None]


def test_another_final_error_is_502_even_when_the_producer_did_not_start() -> None:
    err = not_delivered(TopicAuthorizationFailedError(), _events(2), {}, 10.0)
    assert (err.status_code, err.code, err.headers) == (502, "kafka_refused", None)
    assert "the events with TopicAuthorizationFailedError" in err.message


def test_a_timeout_or_a_retriable_refusal_stays_503_with_retry_after() -> None:
    for exc, refused in ((TimeoutError(), {}), (None, {0: KafkaTimeoutError()}), (KafkaConnectionError(), {})):
        err = not_delivered(exc, _events(2), refused, 10.0)
        assert (err.status_code, err.code, err.headers) == (503, "kafka_unavailable", {"Retry-After": "5"})
