"""MicroBatcher under load: a batch whose wait is over while every worker is busy keeps
taking the texts that arrive until a worker is free (up to ``max_batch``), so a backlog
is handed over in full batches rather than a short one followed by the rest.

Nothing here measures time: the flush rules run on a frozen loop clock that the test
moves by hand, and the model blocks until the test releases it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence

import pytest

from shared.inference.microbatch import MicroBatcher
from tests.loop_clock import FrozenClock, freeze_loop_clock, settle


class Gated:
    """Records batches; each ``predict`` blocks until :meth:`release` (10 s at most)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.active = 0
        self._open = threading.Event()
        self._lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> list[str]:
        with self._lock:
            self.active += 1
            self.batches.append(list(texts))
        try:
            self._open.wait(timeout=10)  # a deadline, not a measurement
            return [t.upper() for t in texts]
        finally:
            with self._lock:
                self.active -= 1

    def release(self) -> None:
        self._open.set()


async def spin_until(predicate: Callable[[], bool], clock: FrozenClock | None = None, step: float = 0.0) -> None:
    """Yield until ``predicate()``, moving the frozen clock by ``step`` each time; fails
    only when the condition never comes (10 s of real time)."""
    deadline = time.monotonic() + 10
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        if clock is not None:
            clock.now += step
        await asyncio.sleep(0)


async def test_a_due_batch_takes_the_texts_that_arrive_while_every_worker_is_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = freeze_loop_clock(monkeypatch)
    model = Gated()
    async with MicroBatcher(model, max_batch=8, max_wait_ms=10, workers=1) as batcher:
        first = asyncio.create_task(batcher.classify("a"))
        await spin_until(lambda: model.active == 1, clock, 0.011)  # "a" runs, holding the only worker
        second = asyncio.create_task(batcher.classify("b"))
        await settle()
        clock.now += 0.011  # the wait of "b" is over: its batch is due, but no worker is free
        await settle()
        rest = [asyncio.create_task(batcher.classify(t)) for t in ("c", "d", "e", "f", "g")]
        await settle()
        model.release()
        everything = asyncio.gather(first, second, *rest)
        await spin_until(everything.done, clock, 0.011)
        assert everything.result() == ["A", "B", "C", "D", "E", "F", "G"]
    # before: [["a"], ["b"], ["c", "d", "e", "f", "g"]], a batch of one handed to the
    # worker while five texts waited behind it
    assert model.batches == [["a"], ["b", "c", "d", "e", "f", "g"]]


async def test_a_batch_waiting_for_a_worker_still_stops_at_max_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = freeze_loop_clock(monkeypatch)
    model = Gated()
    async with MicroBatcher(model, max_batch=3, max_wait_ms=10, workers=1) as batcher:
        first = asyncio.create_task(batcher.classify("a"))
        await spin_until(lambda: model.active == 1, clock, 0.011)
        later = [asyncio.create_task(batcher.classify(t)) for t in ("b", "c", "d", "e", "f", "g", "h")]
        await settle()
        clock.now += 0.011
        await settle()
        model.release()
        everything = asyncio.gather(first, *later)
        await spin_until(everything.done, clock, 0.011)
        assert everything.result() == ["A", "B", "C", "D", "E", "F", "G", "H"]
    assert model.batches == [["a"], ["b", "c", "d"], ["e", "f", "g"], ["h"]]


async def test_close_while_a_batch_waits_for_a_worker_runs_every_text(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = freeze_loop_clock(monkeypatch)
    model = Gated()
    batcher = MicroBatcher(model, max_batch=8, max_wait_ms=10, workers=1)
    first = asyncio.create_task(batcher.classify("a"))
    await spin_until(lambda: model.active == 1, clock, 0.011)
    waiting = [asyncio.create_task(batcher.classify(t)) for t in ("b", "c")]
    await settle()
    clock.now += 0.011
    await settle()
    closing = asyncio.create_task(batcher.close())
    await settle()
    model.release()
    await spin_until(closing.done, clock, 0.011)
    assert [first.result(), *(w.result() for w in waiting)] == ["A", "B", "C"]
    assert model.batches == [["a"], ["b", "c"]]
