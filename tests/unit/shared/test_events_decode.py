"""Decoding a record that is JSON no contract can read: the error says so, with the class
a plain DLQ replay leaves in the DLQ (review finding: each case fails on the code before
the fix, where it raised RecursionError or ValueError, dead-lettered under that class and
sent back by every plain ``tonewatch dlq replay``, to fail and return again)."""

from __future__ import annotations

import sys

import pytest

from shared.events import InvalidEvent, decode_json, decode_raw
from shared.kafka.dlq_ops import PERMANENT_ERROR_CLASSES

DEPTH = sys.getrecursionlimit() + 10


@pytest.mark.parametrize(
    ("value", "says"),
    [
        pytest.param(b'{"text": "x", "a": ' + b"[" * DEPTH + b"]" * DEPTH + b"}", "nested too deeply", id="deep"),
        pytest.param(b"[" * DEPTH + b"]" * DEPTH, "nested too deeply", id="deep-array"),
        pytest.param(
            b'{"text": "x", "a": ' + b"[" * (DEPTH // 2) + b'"\\ud800"' + b"]" * (DEPTH // 2) + b"}",
            "nested too deeply",
            id="deep-with-a-lone-surrogate",
        ),
        pytest.param(b'{"text": "x", "n": 1' + b"0" * 5_000 + b"}", "integer", id="integer-too-long"),
    ],
)
def test_json_no_contract_can_read_is_a_permanent_decoding_error(value: bytes, says: str) -> None:
    for decode in (decode_json, lambda v: decode_raw(v, stream="news", topic="news.raw", partition=0, offset=1)):
        with pytest.raises(InvalidEvent) as info:
            decode(value)
        assert info.value.error_class == "JSONDecodeError" and info.value.error_class in PERMANENT_ERROR_CLASSES
        assert info.value.reason.startswith("malformed JSON: ") and says in info.value.reason
        assert len(info.value.reason) < 300


def test_shallow_json_with_a_lone_surrogate_still_decodes() -> None:
    assert decode_json(b'{"text": "a\\ud800b", "x": [["\\udc00"]]}') == {"text": "a\ufffdb", "x": [["\ufffd"]]}
