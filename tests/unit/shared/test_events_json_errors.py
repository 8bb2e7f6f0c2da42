"""A malformed event's reason keeps the decoder's position and reads as a sentence: "Unterminated
string starting at at char 39" (dead letters) and "Invalid control character at" with no position
(``ingest file``) were what users saw."""

from __future__ import annotations

import pytest

from services.ingest.sources import _json_line
from shared.events import InvalidEvent, decode_json


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"id": "a", "text": "open', "malformed JSON: Unterminated string starting at char 20"),
        (b'{"id": "a", "text": "tab\there"}', "malformed JSON: Invalid control character at char 24"),
        (b"", "malformed JSON: Expecting value at char 0"),
    ],
)
def test_a_malformed_event_says_what_and_where(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_json(raw)
    assert caught.value.reason == reason
    assert _json_line(3, raw).error == reason
