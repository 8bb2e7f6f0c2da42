"""``tw.origin``: an id-less raw record keeps its first place's position id through
dead letters and replays; a malformed header falls back to the current place."""

from __future__ import annotations

import json

import pytest

from services.classifier.decode import decode_batch
from shared.events import position_id
from shared.kafka.dlq import ORIGIN_HEADER, FailedRecord, dlq_headers, parse_dlq_headers, record_origin
from shared.kafka.dlq_ops import DlqEntry, replay_headers
from shared.kafka.records import InRecord
from shared.topics import Topics

TOPICS = Topics(prefix="p.")
RAW = json.dumps({"text": "Acme shares fall", "event_time": "2026-11-30T10:00:00Z"}).encode()


def _origin(headers: list[tuple[str, bytes]]) -> list[bytes]:
    return [v for k, v in headers if k == ORIGIN_HEADER]


def test_a_first_dead_letter_records_its_place_and_a_replay_and_the_next_dead_letter_keep_it() -> None:
    first = dlq_headers(FailedRecord(TOPICS.news_raw, 2, 7, None, RAW, [], "E", "bad"), "classifier")
    assert _origin(first) == [f"{TOPICS.news_raw}[2]@7".encode()]
    assert parse_dlq_headers(first).offset == 7  # tw.origin is no DeadLetter field
    entry = DlqEntry(0, 0, None, RAW, parse_dlq_headers(first), first)
    replayed = replay_headers(entry)
    assert _origin(replayed) == [f"{TOPICS.news_raw}[2]@7".encode()]
    again = dlq_headers(FailedRecord(TOPICS.news_raw, 0, 99, None, RAW, replayed, "E", "bad"), "classifier")
    assert _origin(again) == [f"{TOPICS.news_raw}[2]@7".encode()]
    assert parse_dlq_headers(again).offset == 99  # where it failed this time


def test_a_dead_letter_written_before_the_header_is_replayed_with_its_failing_place() -> None:
    old = [
        (k, v)
        for k, v in dlq_headers(FailedRecord(TOPICS.news_raw, 1, 5, None, RAW, [], "E", "bad"), "c")
        if k != ORIGIN_HEADER
    ]
    entry = DlqEntry(0, 0, None, RAW, parse_dlq_headers(old), old)
    assert _origin(replay_headers(entry)) == [f"{TOPICS.news_raw}[1]@5".encode()]


def _decoded_id(headers: list[tuple[str, bytes]]) -> str:
    good, bad = decode_batch([InRecord(TOPICS.news_raw, 0, 42, None, RAW, headers, 1_700_000_000_000)], TOPICS)
    assert not bad
    return good[0].event.id


def test_the_classifier_takes_the_position_id_of_the_origin() -> None:
    assert _decoded_id([(ORIGIN_HEADER, f"{TOPICS.news_raw}[2]@7".encode())]) == position_id(TOPICS.news_raw, 2, 7)
    assert _decoded_id([]) == position_id(TOPICS.news_raw, 0, 42)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"garbage",
        b"news.raw[0]@7",  # another environment's topic
        b"text.scored[0]@7",
        None,
        b"\xff\xfe",
        "news.raw[0]@٣".encode(),  # a non-ASCII digit
        b"[0]@7",
        b"..[0]@7",
        b"TOPIC[-1]@7",
        b"TOPIC[0]@-7",
        b"TOPIC[01]@7",
        b"TOPIC[0]@07",
        b"TOPIC[0]@ 7",
        b"TOPIC[0]@7\n",
        b"TOPIC[2147483648]@7",
        b"TOPIC[0]@9223372036854775808",
        b"TOPIC[0]@" + b"9" * 10_000,
        b"TOPIC[0]@7x",
    ],
)
def test_a_malformed_origin_falls_back_to_the_current_place(value: bytes | None) -> None:
    raw = (value or b"").replace(b"TOPIC", TOPICS.news_raw.encode()) if value is not None else None
    headers: list[tuple[str, bytes]] = [(ORIGIN_HEADER, raw)]  # type: ignore[list-item]  # a null header
    assert record_origin(TOPICS.news_raw, 0, 42, headers) == (TOPICS.news_raw, 0, 42)
    assert _decoded_id(headers) == position_id(TOPICS.news_raw, 0, 42)
    letter = dlq_headers(FailedRecord(TOPICS.news_raw, 0, 42, None, RAW, headers, "E", "bad"), "classifier")
    assert _origin(letter) == [f"{TOPICS.news_raw}[0]@42".encode()]  # the place whose id it had


def test_two_origins_are_none() -> None:
    one, two = f"{TOPICS.news_raw}[2]@7".encode(), f"{TOPICS.news_raw}[2]@8".encode()
    headers = [(ORIGIN_HEADER, one), (ORIGIN_HEADER, two)]
    assert record_origin(TOPICS.news_raw, 0, 42, headers) == (TOPICS.news_raw, 0, 42)
    assert record_origin(TOPICS.news_raw, 0, 42, [(ORIGIN_HEADER, one)]) == (TOPICS.news_raw, 2, 7)
    assert record_origin(
        TOPICS.news_raw, 0, 42, [(ORIGIN_HEADER, f"{TOPICS.news_raw}[2147483647]@9223372036854775807".encode())]
    ) == (
        TOPICS.news_raw,
        2**31 - 1,
        2**63 - 1,
    )
