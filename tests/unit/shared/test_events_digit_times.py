"""A raw event's ``event_time`` of digits alone in a string (every CSV field is a string)
is refused: pydantic read ``"2026"`` as Unix seconds, 1970-01-01T00:33:46Z. A JSON number
is still a Unix time (documented in the published schema)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest.produce import prepare
from shared.events import InvalidEvent, RawChat, RawNews, decode_raw


@pytest.mark.parametrize("event_time", ["2026", "20261201", "1767225600", "-5", "2026.5"])
def test_digits_in_a_string_are_refused_at_ingest(event_time: str) -> None:
    row = {"id": "n-1", "text": "Acme shares slump", "event_time": event_time}  # as a CSV row reads
    with pytest.raises(InvalidEvent, match=r"event_time: .*use ISO 8601 \(e\.g\. 2026-12-01T00:00:00Z\)"):
        prepare(row, "news")


def test_digits_in_a_string_on_a_raw_topic_are_invalid() -> None:
    value = b'{"id": "c-1", "text": "lost my card", "conversation_id": "v", "event_time": "2026"}'
    with pytest.raises(InvalidEvent, match="use ISO 8601"):
        decode_raw(value, stream="chat", topic="chat.raw", partition=0, offset=1)


def test_a_json_number_is_still_unix_seconds_and_iso_strings_pass() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert RawNews(id="a", text="x", event_time=1767225600).event_time == when  # type: ignore[arg-type]
    assert RawNews(id="a", text="x", event_time=1767225600000).event_time == when  # type: ignore[arg-type]
    chat = RawChat(id="a", text="x", conversation_id="v", event_time="2026-01-01T01:00:00+01:00")  # type: ignore[arg-type]
    assert chat.event_time == when
