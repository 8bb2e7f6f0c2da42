"""``tw.origin``: an id-less raw record keeps its first place's position id through
dead letters and replays; a malformed header, one not of the record's bytes or one
naming a later place of its own partition falls back to the current place."""

from __future__ import annotations

import json

import pytest

from services.classifier.decode import decode_batch
from shared.events import position_id
from shared.kafka.dlq import (
    ORIGIN_HEADER,
    FailedRecord,
    dlq_headers,
    format_origin,
    parse_dlq_headers,
    record_origin,
    value_digest,
)
from shared.kafka.dlq_ops import DlqEntry, replay_headers
from shared.kafka.records import InRecord
from shared.topics import Topics

TOPICS = Topics(prefix="p.")
RAW = json.dumps({"text": "Acme shares fall", "event_time": "2026-11-30T10:00:00Z"}).encode()
OTHER = json.dumps({"text": "Acme shares rise", "event_time": "2026-11-30T10:00:00Z"}).encode()


def _o(partition: int, offset: int, value: bytes | None = RAW) -> bytes:
    """The tw.origin of RAW (or ``value``) first read at news.raw[partition]@offset."""
    return format_origin((TOPICS.news_raw, partition, offset), value)


def _origin(headers: list[tuple[str, bytes]]) -> list[bytes]:
    return [v for k, v in headers if k == ORIGIN_HEADER]


def test_a_first_dead_letter_records_its_place_and_a_replay_and_the_next_dead_letter_keep_it() -> None:
    first = dlq_headers(FailedRecord(TOPICS.news_raw, 2, 7, None, RAW, [], "E", "bad"), "classifier")
    assert _origin(first) == [f"{TOPICS.news_raw}[2]@7#{value_digest(RAW)}".encode()] == [_o(2, 7)]
    assert parse_dlq_headers(first).offset == 7  # tw.origin is no DeadLetter field
    entry = DlqEntry(0, 0, None, RAW, parse_dlq_headers(first), first)
    replayed = replay_headers(entry)
    assert _origin(replayed) == [_o(2, 7)]
    again = dlq_headers(FailedRecord(TOPICS.news_raw, 0, 99, None, RAW, replayed, "E", "bad"), "classifier")
    assert _origin(again) == [_o(2, 7)]
    assert parse_dlq_headers(again).offset == 99  # where it failed this time


def test_a_dead_letter_written_before_the_header_is_replayed_with_its_failing_place() -> None:
    old = [
        (k, v)
        for k, v in dlq_headers(FailedRecord(TOPICS.news_raw, 1, 5, None, RAW, [], "E", "bad"), "c")
        if k != ORIGIN_HEADER
    ]
    entry = DlqEntry(0, 0, None, RAW, parse_dlq_headers(old), old)
    assert _origin(replay_headers(entry)) == [_o(1, 5)]


def _decoded_id(headers: list[tuple[str, bytes]], value: bytes = RAW, offset: int = 42) -> str:
    good, bad = decode_batch([InRecord(TOPICS.news_raw, 0, offset, None, value, headers, 1_700_000_000_000)], TOPICS)
    assert not bad
    return good[0].event.id


def test_the_classifier_takes_the_position_id_of_an_origin_of_the_same_bytes() -> None:
    # a replay re-sends the original bytes: the origin's digest is theirs
    assert _decoded_id([(ORIGIN_HEADER, _o(2, 7))]) == position_id(TOPICS.news_raw, 2, 7)
    assert _decoded_id([(ORIGIN_HEADER, _o(0, 7))]) == position_id(TOPICS.news_raw, 0, 7)
    assert _decoded_id([]) == position_id(TOPICS.news_raw, 0, 42)
    # a place without the digest (a producer's own header) is not trusted
    assert _decoded_id([(ORIGIN_HEADER, f"{TOPICS.news_raw}[2]@7".encode())]) == position_id(TOPICS.news_raw, 0, 42)


def test_a_spoofed_origin_does_not_give_a_record_another_records_position_id() -> None:
    """Two id-less records, at [0]@5 and [0]@900, the second carrying the first's place
    (a producer's header, or a header-forwarding mirror copying a replayed record's
    header onto another record): each keeps its own id, none is dropped as the other's
    duplicate."""
    assert _decoded_id([], RAW, offset=5) == position_id(TOPICS.news_raw, 0, 5)
    for spoof, value in (
        (f"{TOPICS.news_raw}[0]@5".encode(), RAW),  # no digest
        (_o(0, 5, OTHER), RAW),  # another record's origin
        (_o(0, 5, RAW), OTHER),
    ):
        assert _decoded_id([(ORIGIN_HEADER, spoof)], value, offset=900) == position_id(TOPICS.news_raw, 0, 900)


def test_an_origin_at_or_after_the_current_place_of_its_partition_is_ignored() -> None:
    # a record is replayed after it was first read: an origin at a later (future) offset
    # of the same partition, or its own place, is no replay's
    for offset in (42, 43, 900):
        assert record_origin(TOPICS.news_raw, 0, 42, [(ORIGIN_HEADER, _o(0, offset))], RAW) == (TOPICS.news_raw, 0, 42)
        assert _decoded_id([(ORIGIN_HEADER, _o(0, offset))]) == position_id(TOPICS.news_raw, 0, 42)
    # another partition's offset says nothing about this one's
    assert record_origin(TOPICS.news_raw, 0, 42, [(ORIGIN_HEADER, _o(1, 900))], RAW) == (TOPICS.news_raw, 1, 900)


def test_a_dead_letter_of_a_record_with_a_spoofed_origin_records_its_own_place() -> None:
    letter = dlq_headers(
        FailedRecord(TOPICS.news_raw, 0, 42, None, RAW, [(ORIGIN_HEADER, _o(0, 5, OTHER))], "E", "x"), "c"
    )
    assert _origin(letter) == [_o(0, 42)]
    entry = DlqEntry(0, 0, None, RAW, parse_dlq_headers(letter), letter)
    assert _origin(replay_headers(entry)) == [_o(0, 42)]


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
        b"TOPIC[0]@7#",
        b"TOPIC[0]@7#" + value_digest(RAW).upper().encode(),
        b"TOPIC[0]@7#" + value_digest(RAW).encode() + b"0",
        b"TOPIC[0]@7#" + value_digest(RAW)[:-1].encode(),
        b"TOPIC[0]@7#" + value_digest(RAW).encode() + b"\n",
        b"TOPIC[0]@7##" + value_digest(RAW).encode(),
        b"TOPIC[0]@7 #" + value_digest(RAW).encode(),
        b"TOPIC[0]@7#" + value_digest(OTHER).encode(),
        b"TOPIC[0]@7#" + value_digest(None).encode(),
    ],
)
def test_a_malformed_origin_falls_back_to_the_current_place(value: bytes | None) -> None:
    raw = (value or b"").replace(b"TOPIC", TOPICS.news_raw.encode()) if value is not None else None
    headers: list[tuple[str, bytes]] = [(ORIGIN_HEADER, raw)]  # type: ignore[list-item]  # a null header
    assert record_origin(TOPICS.news_raw, 0, 42, headers, RAW) == (TOPICS.news_raw, 0, 42)
    assert _decoded_id(headers) == position_id(TOPICS.news_raw, 0, 42)
    letter = dlq_headers(FailedRecord(TOPICS.news_raw, 0, 42, None, RAW, headers, "E", "bad"), "classifier")
    assert _origin(letter) == [_o(0, 42)]  # the place whose id it had


def test_two_origins_are_none() -> None:
    one, two = _o(2, 7), _o(2, 8)
    headers = [(ORIGIN_HEADER, one), (ORIGIN_HEADER, two)]
    assert record_origin(TOPICS.news_raw, 0, 42, headers, RAW) == (TOPICS.news_raw, 0, 42)
    assert record_origin(TOPICS.news_raw, 0, 42, [(ORIGIN_HEADER, one)], RAW) == (TOPICS.news_raw, 2, 7)
    assert record_origin(TOPICS.news_raw, 0, 42, [(ORIGIN_HEADER, _o(2**31 - 1, 2**63 - 1))], RAW) == (
        TOPICS.news_raw,
        2**31 - 1,
        2**63 - 1,
    )
