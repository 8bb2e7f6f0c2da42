"""``--speedup`` and a line without an event time: before, the line was stamped now and
scheduled by its gap from the file's earliest event time, so three 2020 lines with the
middle one timeless, at ``--speedup 86400``, were still being sent after half an hour.
Such a line is now rejected by its number and the rest is sent at once (when no line has a
time, all are stamped now alike and sent, as before)."""

from __future__ import annotations

import asyncio
import json

from tw_testing import RecordingProducer

from services.ingest.replay import NO_EVENT_TIME, Pacing, replay
from services.ingest.sources import Line
from shared.topics import Topics

LINES = [
    Line(1, {"id": "a", "text": "first", "event_time": "2020-03-01T10:00:00Z"}),
    Line(2, {"id": "b", "text": "no time"}),
    Line(3, {"id": "c", "text": "third", "event_time": "2020-03-01T10:00:01Z"}),
    Line(4, {"id": "d", "text": "empty time", "event_time": ""}),
]


async def test_speedup_rejects_a_line_without_event_time_and_sends_the_rest() -> None:
    producer = RecordingProducer()
    async with asyncio.timeout(10):
        report = await replay(producer, Topics(), LINES, "news", Pacing(speedup=86_400), origin="f.jsonl")  # type: ignore[arg-type]
    assert [json.loads(v)["text"] for v in producer.values] == ["first", "third"]
    assert report.produced == 2
    assert report.rejected == [(2, NO_EVENT_TIME), (4, NO_EVENT_TIME)]
    assert "--speedup needs each line's event_time" in NO_EVENT_TIME


async def test_speedup_of_lines_none_of_which_has_a_time_still_sends_them_at_once() -> None:
    """No gap to replay: each is stamped now, as before."""
    producer = RecordingProducer()
    untimed = [Line(1, {"id": "a", "text": "one"}), Line(2, {"id": "b", "text": "two"})]
    async with asyncio.timeout(10):
        report = await replay(producer, Topics(), untimed, "news", Pacing(speedup=86_400), origin="f.jsonl")  # type: ignore[arg-type]
    assert report.produced == 2 and report.rejected == []


async def test_speedup_with_backfill_rejects_it_too() -> None:
    producer = RecordingProducer()
    async with asyncio.timeout(10):
        report = await replay(
            producer,
            Topics(),
            LINES,
            "news",
            Pacing(speedup=86_400, backfill_s=60),
            origin="f.jsonl",  # type: ignore[arg-type]
        )
    assert report.produced == 2 and [n for n, _ in report.rejected] == [2, 4]


async def test_without_speedup_a_line_without_event_time_is_still_stamped_now() -> None:
    producer = RecordingProducer()
    report = await replay(producer, Topics(), LINES, "news", Pacing(rate=1000), origin="f.jsonl")  # type: ignore[arg-type]
    assert report.produced == 4 and report.rejected == []
