"""The classifier's memory is bounded by its batch settings, also on large records: faust
counted its stream buffer in records only (4,096 one-megabyte articles fitted in before
back-pressure), and a batch of 256 such records was classified at once."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from mode.utils.queues import FlowControlEvent

from services.classifier.app import ByteBoundedQueue, RunState, build_app, split_by_bytes
from services.classifier.classify import Classify
from services.classifier.config import ClassifierSettings

MIB = 1024 * 1024


def event(n: int, name: str = "") -> Any:
    return SimpleNamespace(message=SimpleNamespace(value=b"x" * n), name=name)


def test_the_built_app_bounds_its_stream_buffer_and_fetches_by_the_batch_settings() -> None:
    app = build_app(ClassifierSettings(), cast(Classify, None), RunState())
    assert app.conf.stream_buffer_maxsize == 4096  # about a second of headlines, as before
    assert app.buffer_max_bytes == 4 * 8 * MIB * 2  # 4 windows of 2 batches of 8 MiB
    assert app.conf.consumer_max_fetch_size == MIB

    settings = ClassifierSettings(batch_max=1024, concurrent_batches=3, batch_max_bytes=256 * 1024)
    app = build_app(settings, cast(Classify, None), RunState())
    assert app.conf.stream_buffer_maxsize == 4 * 1024 * 3
    assert app.buffer_max_bytes == 4 * 256 * 1024 * 3
    assert app.conf.consumer_max_fetch_size == 256 * 1024


async def test_the_stream_buffer_is_full_at_its_byte_budget_and_pauses_before() -> None:
    app = build_app(ClassifierSettings(batch_max_bytes=MIB, concurrent_batches=1), cast(Classify, None), RunState())
    queue = app.FlowControlQueue(maxsize=4096)  # how faust makes a stream's buffer
    assert isinstance(queue, ByteBoundedQueue) and queue.max_bytes == 4 * MIB
    for _ in range(13):
        queue.force_put_nowait(event(MIB // 4))
    assert queue.qsize() == 3328 and not queue.full()  # over 80%: faust pauses fetching
    assert queue.in_pressure_high_state(lambda: None)
    for _ in range(3):
        queue.force_put_nowait(event(MIB // 4))
    assert queue.full() and len(queue._queue) == 16
    for _ in range(16):
        await queue.get()
    assert queue.qsize() == 0 and queue.bytes == 0


async def test_a_record_larger_than_the_stream_buffer_waits_for_room_and_is_never_dropped() -> None:
    queue = ByteBoundedQueue(maxsize=100, max_bytes=1000, flow_control=FlowControlEvent(initially_suspended=False))
    queue.force_put_nowait(event(1000))
    assert queue.full()
    put = asyncio.ensure_future(queue.put(event(5000)))
    await asyncio.sleep(0)
    assert not put.done()  # full by its bytes: the fetcher waits
    await queue.get()
    await asyncio.wait_for(put, 1)
    assert queue.full() and len(queue._queue) == 1  # one record, over the budget, held alone
    assert len((await queue.get()).message.value) == 5000
    assert queue.qsize() == 0 and queue.bytes == 0


def test_headlines_count_in_records_not_bytes() -> None:
    queue = ByteBoundedQueue(maxsize=4096, max_bytes=64 * MIB, flow_control=FlowControlEvent())
    for _ in range(4000):
        queue.force_put_nowait(event(300))
    assert queue.qsize() == 4000


def test_a_batch_is_split_in_order_by_its_bytes_and_a_large_record_goes_alone() -> None:
    events = [event(n, str(i)) for i, n in enumerate([300, 400, 600, 2500, 100, 100, 900, 0])]
    runs = split_by_bytes(events, 1000)
    assert [[e.name for e in run] for run in runs] == [["0", "1"], ["2"], ["3"], ["4", "5"], ["6", "7"]]
    assert [e for run in runs for e in run] == events  # nothing dropped, order kept
    assert split_by_bytes([], 1000) == []
    assert split_by_bytes(events[:2], 8 * MIB) == [events[:2]]  # headlines: the batch as taken
