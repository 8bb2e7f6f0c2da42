"""A live input (a pipe: ``tail -f f.jsonl | tonewatch ingest file /dev/stdin``) is read in a
thread. Before, ``replay`` read it in the event loop and sent every 200 lines: a feed of a line
a second reached Kafka every 200 seconds, and while the read waited for the writer the loop
(the producer's background tasks) stood still; Ctrl-C waited for the next line."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.ingest.replay import HANDOFF_CHUNKS, Pacing, replay
from services.ingest.sources import Line, PipeLines, read_file
from shared.topics import Topics


class _Producer:
    """Acknowledges at once and notes when each record was given (no broker)."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str]] = []
        self.hold: asyncio.Event | None = None

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        if self.hold is not None:
            await self.hold.wait()
        self.sent.append((time.monotonic(), json.loads(value)["id"]))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _line(i: int, event_id: str | None = None) -> Line:
    return Line(i, {"id": event_id or f"s{i}", "text": f"headline {i}"})


class _Feed:
    """Three lines, then a read blocked until ``release`` is set (5 s at most, so a blocked
    loop ends the test instead of hanging it), then a line repeating the first one's id."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[Line]:
        try:
            yield from (_line(i) for i in (1, 2, 3))
            self.release.wait(5)
            yield _line(4, "s1")
        finally:
            self.closed.set()


async def test_lines_of_a_live_input_are_sent_within_the_time_not_the_chunk() -> None:
    producer, feed = _Producer(), _Feed()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    start = time.monotonic()
    task = asyncio.create_task(
        replay(producer, Topics(), iter(feed), "news", Pacing(), origin="t", live=True, within_s=0.2)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.6)  # the feed is blocked meanwhile
    assert [i for _, i in producer.sent] == ["s1", "s2", "s3"], "not sent before the input ended"
    assert all(at - start < 0.5 for at, _ in producer.sent)
    assert ticks >= 20, "the event loop was blocked by the read"
    feed.release.set()
    async with asyncio.timeout(5):
        report = await task
    ticker.cancel()
    assert report.produced == 3 and report.rejected_total == 1  # ids are checked across the batches
    assert report.rejected[0][0] == 4 and "line 1 has the same id" in report.rejected[0][1]
    assert feed.closed.wait(1)


async def test_an_error_of_a_live_input_is_raised_by_replay_with_its_traceback() -> None:
    def failing() -> Iterator[Line]:
        yield _line(1)
        raise OSError("the pipe broke")

    producer = _Producer()
    async with asyncio.timeout(5):
        with pytest.raises(OSError, match="the pipe broke") as info:
            await replay(producer, Topics(), failing(), "news", Pacing(), origin="t", live=True)  # type: ignore[arg-type]
    assert "failing" in [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]


async def test_cancelling_a_replay_blocked_on_a_live_input_returns_at_once() -> None:
    feed = _Feed()
    task = asyncio.create_task(
        replay(_Producer(), Topics(), iter(feed), "news", Pacing(), origin="t", live=True)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.2)
    start = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - start < 0.2
    feed.release.set()  # the reader thread, blocked in the read, then stops and closes the input
    assert await asyncio.to_thread(feed.closed.wait, 2)
    for _ in range(100):
        if not any(t.name == "ingest-reader" for t in threading.enumerate()):
            break
        await asyncio.sleep(0.01)
    assert not any(t.name == "ingest-reader" for t in threading.enumerate())


async def test_the_lines_read_ahead_of_a_live_input_are_bounded() -> None:
    pulled = 0

    def endless() -> Iterator[Line]:
        nonlocal pulled
        while True:
            pulled += 1
            yield _line(pulled)

    producer = _Producer()
    producer.hold = asyncio.Event()  # Kafka does not answer: nothing is taken after the first chunk
    task = asyncio.create_task(
        replay(producer, Topics(), endless(), "news", Pacing(), origin="t", chunk=50, live=True)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.3)
    # a batch taken by the loop (its first chunk being sent), the thread's full handoff, a line in hand
    assert 0 < pulled <= 2 * HANDOFF_CHUNKS * 50 + 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_pacing_and_ids_of_a_live_input_are_those_of_a_file() -> None:
    async def ids(pacing: Pacing, live: bool, run: int | None = None) -> list[str]:
        producer = _Producer()
        lines = [_line(i) for i in range(1, 6)]
        await replay(producer, Topics(), iter(lines), "news", pacing, origin="t", run=run, live=live)  # type: ignore[arg-type]
        return [i for _, i in producer.sent]

    for pacing, run in ((Pacing(), None), (Pacing(rate=1e6), 7), (Pacing(speedup=1e9), 7)):
        assert await ids(pacing, True, run) == await ids(pacing, False, run)
    start = time.monotonic()
    assert len(await ids(Pacing(rate=50), True)) == 5
    assert time.monotonic() - start >= 4 / 50 * 0.9


async def test_a_named_pipe_is_read_as_a_live_input(tmp_path: Path) -> None:
    """``read_file`` on a pipe gives :class:`PipeLines`: ``replay`` reads it in a thread by default."""
    fifo = tmp_path / "feed.jsonl"
    os.mkfifo(fifo)
    release = threading.Event()

    def write() -> None:
        with fifo.open("w") as fh:
            fh.write("".join(json.dumps({"id": f"s{i}", "text": f"x {i}"}) + "\n" for i in range(3)))
            fh.flush()
            release.wait(5)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    lines = read_file(fifo)
    assert isinstance(lines, PipeLines)
    producer = _Producer()
    task = asyncio.create_task(replay(producer, Topics(), lines, "news", Pacing(), origin="t", within_s=0.1))  # type: ignore[arg-type]
    await asyncio.sleep(0.5)
    sent_before_end = len(producer.sent)
    release.set()
    async with asyncio.timeout(5):
        report = await task
    assert sent_before_end == 3 and report.produced == 3
    regular = tmp_path / "f.jsonl"
    regular.write_text('{"text": "x"}\n')
    assert not isinstance(read_file(regular), PipeLines)


def _failing_feed() -> Iterator[Line]:
    """Two lines, then a read that fails (the pipe's writer went wrong)."""
    yield _line(1)
    yield _line(2)
    raise OSError("EIO")


async def test_lines_read_before_a_failed_read_are_sent_then_the_error_raised() -> None:
    """A pipe cannot be read again: lines dropped when its read fails would be lost."""
    producer = _Producer()
    with pytest.raises(OSError, match="EIO"):
        await replay(producer, Topics(), _failing_feed(), "news", Pacing(), origin="t", live=True)  # type: ignore[arg-type]
    assert [i for _, i in producer.sent] == ["s1", "s2"]


def _paused_feed(pause: threading.Event) -> Iterator[Line]:
    """One line, a pause of 1.2 s, then three lines at once."""
    yield _line(1)
    pause.wait(1.2)
    yield from (_line(i) for i in (2, 3, 4))


async def test_a_rate_earns_no_burst_from_a_pause_of_the_feed() -> None:
    """--rate 5 on a feed that paused 1.2 s: the lines after it are still 0.2 s apart, not
    sent at once to catch up the schedule the pause left behind."""
    producer = _Producer()
    await replay(
        producer,
        Topics(),
        _paused_feed(threading.Event()),
        "news",
        Pacing(rate=5),
        origin="t",
        live=True,  # type: ignore[arg-type]
    )
    times = [at for at, _ in producer.sent]
    assert [i for _, i in producer.sent] == ["s1", "s2", "s3", "s4"]
    assert all(later - earlier >= 0.15 for earlier, later in itertools.pairwise(times)), times
