"""MicroBatcher with fake predictors: batching, order, backpressure, shutdown,
and the event loop staying responsive while a batch runs.

Nothing here measures time: the flush rules run on a frozen loop clock that the test
moves by hand, and "the loop stays free" is a callback that must run while a batch is
still inside ``predict``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from shared.inference.microbatch import BatcherClosedError, MicroBatcher
from shared.inference.settings import InferenceSettings
from tests.loop_clock import freeze_loop_clock, settle


class Echo:
    """Records batches; result = text upper-cased; optional blocking delay.

    With ``loop``, each batch schedules a callback on that loop and blocks in ``predict``
    until it has run (or 10 s passed): ``loop_ran`` records, per batch, whether the loop
    ran it while the batch was still in ``predict``. It cannot if ``predict`` blocks the
    loop's own thread."""

    def __init__(
        self, delay: float = 0.0, fail_on: str | None = None, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.loop = loop
        self.loop_ran: list[bool] = []
        self.batches: list[list[str]] = []
        self.active = 0
        self.max_active = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> list[str]:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.batches.append(list(texts))
            self.threads.add(threading.current_thread().name)
        try:
            if self.delay:
                time.sleep(self.delay)  # blocking, like a real model
            if self.loop is not None:
                ran = threading.Event()
                self.loop.call_soon_threadsafe(ran.set)
                self.loop_ran.append(ran.wait(timeout=10))  # a deadline, not a measurement
            if self.fail_on is not None and self.fail_on in texts:
                raise ValueError(f"bad text {self.fail_on}")
            return [t.upper() for t in texts]
        finally:
            with self._lock:
                self.active -= 1


async def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.001)


async def spin_until(predicate: object, timeout: float = 10.0) -> None:
    """``wait_for`` for a frozen loop clock: yields with ``sleep(0)``, whose deadline is
    real time; it fails only when the condition never comes."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0)


async def test_results_in_order_and_batches_bounded() -> None:
    fake = Echo()
    texts = [f"t{i}" for i in range(100)]
    async with MicroBatcher(fake, max_batch=16, max_wait_ms=50) as batcher:
        out = await batcher.classify_many(texts)
    assert out == [t.upper() for t in texts]
    assert max(len(b) for b in fake.batches) <= 16
    assert sum(len(b) for b in fake.batches) == 100
    assert all(name.startswith("tonewatch-inference") for name in fake.threads)


async def test_concurrent_callers_share_a_batch() -> None:
    fake = Echo()
    async with MicroBatcher(fake, max_batch=64, max_wait_ms=200) as batcher:
        out = await asyncio.gather(*(batcher.classify(f"x{i}") for i in range(10)))
    assert out == [f"X{i}" for i in range(10)]
    assert fake.batches == [[f"x{i}" for i in range(10)]]


async def test_partial_batch_flushes_after_max_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch short of ``max_batch`` waits ``max_wait_ms`` after its first text for
    company, then runs. On a frozen loop clock: 1 ms before the deadline nothing has run
    and a text sent then joins the batch; 1 ms after it, the batch runs."""
    clock = freeze_loop_clock(monkeypatch)
    fake = Echo()
    async with MicroBatcher(fake, max_batch=1000, max_wait_ms=20) as batcher:
        first = asyncio.create_task(batcher.classify("only"))
        await settle()
        clock.now += 0.019
        second = asyncio.create_task(batcher.classify("late"))
        await settle()
        assert (batcher.stats.in_flight, batcher.stats.batches, fake.batches) == (0, 0, [])  # still waiting
        clock.now += 0.002
        await spin_until(lambda: first.done() and second.done())
        assert (first.result(), second.result()) == ("ONLY", "LATE")
    assert fake.batches == [["only", "late"]]


async def test_full_batch_does_not_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full batch runs at once: on a frozen loop clock its ``max_wait_ms`` never passes."""
    freeze_loop_clock(monkeypatch)
    fake = Echo()
    async with MicroBatcher(fake, max_batch=4, max_wait_ms=10_000) as batcher:
        work = asyncio.create_task(batcher.classify_many(["a", "b", "c", "d"]))
        await spin_until(work.done)
        assert work.result() == ["A", "B", "C", "D"]
    assert fake.batches == [["a", "b", "c", "d"]]


async def test_errors_reach_every_caller_of_the_batch_only() -> None:
    fake = Echo(fail_on="bad")
    async with MicroBatcher(fake, max_batch=3, max_wait_ms=50) as batcher:
        results = await asyncio.gather(*(batcher.classify(t) for t in ["a", "bad", "c"]), return_exceptions=True)
        assert all(isinstance(r, ValueError) for r in results)
        assert await batcher.classify("fine") == "FINE"


async def test_executor_bound_and_event_loop_keeps_running() -> None:
    """Each batch blocks in ``predict`` until a callback it scheduled on the event loop has
    run: the loop ran it while the batch was still running, so inference was off the loop
    thread. With one worker the three batches ran one at a time, in order."""
    fake = Echo(loop=asyncio.get_running_loop())
    async with MicroBatcher(fake, max_batch=2, max_wait_ms=1, workers=1) as batcher:
        out = await batcher.classify_many([f"t{i}" for i in range(6)])
    assert out == [f"T{i}" for i in range(6)]
    assert fake.batches == [["t0", "t1"], ["t2", "t3"], ["t4", "t5"]]
    assert fake.loop_ran == [True, True, True]  # the loop ran a callback during every batch
    assert fake.max_active == 1  # the executor bound holds
    assert fake.threads and all(name.startswith("tonewatch-inference") for name in fake.threads)


async def test_two_workers_run_two_batches_at_once() -> None:
    fake = Echo(delay=0.2)
    async with MicroBatcher(fake, max_batch=1, max_wait_ms=1, workers=2) as batcher:
        await batcher.classify_many(["a", "b", "c", "d"])
        assert batcher.stats.max_in_flight == 2
    assert fake.max_active == 2


async def test_backpressure_bounds_the_queue() -> None:
    fake = Echo(delay=0.2)
    batcher = MicroBatcher(fake, max_batch=1, max_wait_ms=1, max_pending=2, workers=1)
    batcher.start()
    first = asyncio.create_task(batcher.classify("a"))
    await wait_for(lambda: fake.active == 1)  # "a" runs and holds the only worker
    rest = [asyncio.create_task(batcher.classify(t)) for t in ("b", "c", "d", "e")]
    # the collector takes "b" and waits for the worker; "c" and "d" fill the queue;
    # "e" must wait to be enqueued
    await asyncio.sleep(0.05)  # every producer has run; "a" (0.2 s) is still running
    assert fake.batches == [["a"]]
    assert batcher.pending == 2
    assert await asyncio.gather(first, *rest) == ["A", "B", "C", "D", "E"]
    await batcher.close()


async def test_close_drains_pending_then_rejects() -> None:
    fake = Echo(delay=0.05)
    batcher = MicroBatcher(fake, max_batch=2, max_wait_ms=1)
    pending = [asyncio.create_task(batcher.classify(f"t{i}")) for i in range(5)]
    await asyncio.sleep(0)
    await batcher.close()
    assert [p.result() for p in pending] == [f"T{i}" for i in range(5)]
    with pytest.raises(BatcherClosedError):
        await batcher.classify("late")
    await batcher.close()  # idempotent


async def test_cancelled_caller_is_skipped() -> None:
    fake = Echo(delay=0.1)
    async with MicroBatcher(fake, max_batch=1, max_wait_ms=1) as batcher:
        first = asyncio.create_task(batcher.classify("a"))
        await wait_for(lambda: fake.active == 1)
        gone = asyncio.create_task(batcher.classify("gone"))
        await asyncio.sleep(0)
        gone.cancel()
        assert await first == "A"
        assert await batcher.classify("b") == "B"
    assert ["gone"] not in fake.batches


def test_from_settings() -> None:
    s = InferenceSettings(max_batch=7, max_wait_ms=3, max_pending=9, executor_workers=2)
    b = MicroBatcher.from_settings(Echo(), s)
    assert (b.max_batch, b.max_wait, b.max_pending, b.workers) == (7, 0.003, 9, 2)


def test_invalid_bounds() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(Echo(), max_batch=0)
