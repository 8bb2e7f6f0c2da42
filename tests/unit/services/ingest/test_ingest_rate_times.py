"""``--rate`` stamps a line without ``event_time`` when it is due, not when the line before it was
sent: the replay prepared the next line, stamping it, then slept an interval before sending it,
so each event was an interval early (a minute at ``--rate 1/60``) and landed in a minute the
alerter had already judged. Lines that give a time keep it."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

import pytest

from services.ingest.replay import Pacing, replay
from services.ingest.sources import Line, PipeLines
from shared.topics import Topics

RATE = 4.0  # a line every 0.25 s
TOLERANCE_S = 0.1


class _Producer:
    """Acknowledges at once and notes, for each record, the wall time it was given and its event time."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str, float]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        record = json.loads(value)
        self.sent.append((time.time(), record["id"], datetime.fromisoformat(record["event_time"]).timestamp()))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _lines() -> list[Line]:
    return [Line(i, {"id": f"r{i}", "text": f"headline {i}"}) for i in range(1, 5)]


@pytest.mark.parametrize("live", [False, True], ids=["file", "pipe"])
async def test_a_paced_line_without_a_time_is_stamped_when_it_is_sent(live: bool) -> None:
    producer = _Producer()
    lines = PipeLines(iter(_lines())) if live else _lines()
    report = await replay(producer, Topics(), lines, "news", Pacing(rate=RATE), origin="t", live=live)  # type: ignore[arg-type]
    assert report.produced == 4
    assert [i for _, i, _ in producer.sent] == ["r1", "r2", "r3", "r4"]
    for given_at, event_id, event_time in producer.sent:
        assert abs(given_at - event_time) < TOLERANCE_S, (event_id, given_at - event_time)
    spans = [b[2] - a[2] for a, b in zip(producer.sent, producer.sent[1:], strict=False)]
    assert all(span > 1 / RATE - TOLERANCE_S for span in spans), spans


async def test_a_paced_line_keeps_the_time_it_gives() -> None:
    producer = _Producer()
    given = "2024-05-01T10:00:00+00:00"
    lines = [Line(i, {"id": f"g{i}", "text": "x", "event_time": given}) for i in (1, 2)]
    await replay(producer, Topics(), lines, "news", Pacing(rate=RATE), origin="t", live=False)  # type: ignore[arg-type]
    assert {t for _, _, t in producer.sent} == {datetime.fromisoformat(given).timestamp()}
