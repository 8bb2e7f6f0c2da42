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


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_a_files_unclosed_string_is_not_blamed_on_its_line_ending(ending: bytes) -> None:
    """``ingest file`` read the line with its ending: "Invalid control character at char 36",
    the newline, for a string left open."""
    line = _json_line(1, b'{"id": "a", "text": "open' + ending)
    assert line.error == "malformed JSON: Unterminated string starting at char 20"
    assert _json_line(2, b'{"id": "a", "text": "closed"}' + ending).data == {"id": "a", "text": "closed"}
