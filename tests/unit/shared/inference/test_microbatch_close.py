"""MicroBatcher.close() never strands a caller: every ``classify``/``classify_many`` gets
its result or ``BatcherClosedError``, including callers blocked on a full queue
(backpressure) when close() begins, callers cancelled meanwhile, a second or a cancelled
close(), and callers arriving after it.

The model runs in a manual executor: a batch finishes only when the test says so, on the
loop thread, so every interleaving here is fixed by the test. ``asyncio.wait_for`` with a
generous timeout only turns a hang into a failure; nothing measures time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import pytest

from shared.inference.microbatch import BatcherClosedError, MicroBatcher
from tests.loop_clock import settle

HANG_GUARD = 5.0  # seconds; a deadline against hangs, not a measurement


class Echo:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def predict(self, texts: Sequence[str]) -> list[str]:
        self.batches.append(list(texts))
        return [t.upper() for t in texts]


class ManualExecutor:
    """Stands in for the thread pool: a submitted batch runs when :meth:`finish` says."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[..., Any], tuple[Any, ...], Future[Any]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.jobs.append((fn, args, future))
        return future

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, f in self.jobs if not f.done())

    def finish_next(self) -> None:
        fn, args, future = next(job for job in self.jobs if not job[2].done())
        future.set_result(fn(*args))

    def shutdown(self, wait: bool = True) -> None:
        pass


def make(max_batch: int = 1, max_pending: int = 1) -> tuple[MicroBatcher[str], Echo, ManualExecutor]:
    model, executor = Echo(), ManualExecutor()
    batcher: MicroBatcher[str] = MicroBatcher(
        model,
        max_batch=max_batch,
        max_wait_ms=10_000,
        max_pending=max_pending,
        workers=1,
        executor=executor,  # type: ignore[arg-type]
    )
    return batcher, model, executor


async def outcome(task: asyncio.Task[Any]) -> Any:
    """The task's result, or its exception's type; fails (not hangs) if it never ends."""
    try:
        return await asyncio.wait_for(asyncio.shield(task), HANG_GUARD)
    except TimeoutError:
        raise AssertionError(f"{task.get_name()} never returned") from None
    except Exception as exc:
        return type(exc)


async def saturate(batcher: MicroBatcher[str], executor: ManualExecutor, blocked: Sequence[str]) -> list[Any]:
    """Afterwards "a" runs on the only worker, the collector holds the batch ["b"] waiting for it,
    "c" fills the queue (max_pending=1) and every text of ``blocked`` waits to be queued."""
    a = asyncio.create_task(batcher.classify("a"), name="a")
    await settle()
    assert executor.waiting == 1
    b = asyncio.create_task(batcher.classify("b"), name="b")
    await settle()
    c = asyncio.create_task(batcher.classify("c"), name="c")
    await settle()
    rest = [asyncio.create_task(batcher.classify(t), name=t) for t in blocked]
    await settle()
    assert batcher.pending == 1 and not any(t.done() for t in (a, b, c, *rest))
    return [a, b, c, *rest]


async def finish_all(executor: ManualExecutor, until: Callable[[], bool]) -> None:
    for _ in range(100):
        if until():
            return
        if executor.waiting:
            executor.finish_next()
        await settle()
    raise AssertionError("never settled")


def close_after(batcher: MicroBatcher[str], hops: int) -> list[asyncio.Task[None]]:
    """Calls close() ``hops`` loop callbacks from now; the task lands in the list."""
    loop, closing = asyncio.get_running_loop(), []

    def hop(left: int) -> None:
        if left:
            loop.call_soon(hop, left - 1)
        else:
            closing.append(asyncio.create_task(batcher.close()))

    loop.call_soon(hop, hops)
    return closing


def closed(closing: list[asyncio.Task[None]]) -> Callable[[], bool]:
    return lambda: bool(closing) and closing[0].done()


HOPS = range(12)  # close() at each step of the hand-over that wakes a blocked caller


class HeldQueue(asyncio.Queue[object]):
    """The batcher's queue, able to hold callers just before their text goes in.

    A held caller stands where a caller woken from backpressure stands before it runs:
    room is (or will be) made for it, its text is not queued yet, and anything else may
    take that room first. The test decides what does, whatever order the event loop
    wakes callbacks and tasks in."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.gate = asyncio.Event()
        self.gate.set()
        self.held: list[str] = []
        self.stop_queued = asyncio.Event()

    async def put(self, item: object) -> None:
        if isinstance(item, tuple) and not self.gate.is_set():
            self.held.append(item[0])
            await self.gate.wait()
        await super().put(item)
        if not isinstance(item, tuple):  # close()'s stop marker
            self.stop_queued.set()


def start_with(batcher: MicroBatcher[str], queue: HeldQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    """Starts ``batcher`` on ``queue`` (the collector reads the queue when it first runs,
    which with eager tasks is inside ``start()``)."""
    with monkeypatch.context() as patch:
        patch.setattr(asyncio, "Queue", lambda maxsize: queue)
        batcher.start()


async def test_close_racing_a_woken_backpressured_caller_does_not_strand_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reviewer's sequence, driven step by step: "a" runs, the collector holds ["b"],
    "c" fills the queue, and "d", "e", "f" wait for room. close() queues its stop marker
    into the room made when "c" is taken, ahead of them; only then do they get room. The
    collector stops at the marker and close() emptied the queue once: the callers queued
    after that waited for ever (classify() never returned). Each now gets
    BatcherClosedError."""
    batcher, model, executor = make()
    queue = HeldQueue(maxsize=1)
    start_with(batcher, queue, monkeypatch)
    a, b, c = await saturate(batcher, executor, [])
    queue.gate.clear()
    late = [asyncio.create_task(batcher.classify(t), name=t) for t in "def"]
    await settle()
    assert sorted(queue.held) == ["d", "e", "f"] and batcher.pending == 1
    closing = asyncio.create_task(batcher.close())
    executor.finish_next()  # "a" is done: "b" runs and the collector takes "c"
    await asyncio.wait_for(queue.stop_queued.wait(), HANG_GUARD)
    assert not any(t.done() for t in late)
    queue.gate.set()  # the woken callers run now, behind the stop marker
    await finish_all(executor, closing.done)
    assert [await outcome(t) for t in (a, b, c)] == ["A", "B", "C"]
    assert [await outcome(t) for t in late] == [BatcherClosedError] * 3
    assert model.batches == [["a"], ["b"], ["c"]]


async def test_close_at_every_step_of_a_blocked_callers_hand_over() -> None:
    """close() started at each step of the hand-over that wakes "d" (blocked in put) when
    the collector takes "c": each caller gets its result or BatcherClosedError. Which step
    lets the marker in ahead of "d" depends on the loop's callback order; the test above
    forces that case on any loop."""
    for hops in HOPS:
        batcher, model, executor = make()
        tasks = await saturate(batcher, executor, ["d", "e", "f"])
        executor.finish_next()  # "a" is done
        closing = close_after(batcher, hops)
        await finish_all(executor, closed(closing))
        got = [await outcome(t) for t in tasks]
        assert got[:3] == ["A", "B", "C"], hops
        for text, result in zip("def", got[3:], strict=True):
            assert result in (text.upper(), BatcherClosedError), (hops, got)
        assert model.batches == [[t] for t, r in zip("abcdef", got, strict=True) if r != BatcherClosedError]


async def test_close_with_callers_blocked_in_backpressure_runs_them() -> None:
    batcher, _, executor = make()
    tasks = await saturate(batcher, executor, ["d", "e", "f"])
    closing = asyncio.create_task(batcher.close())
    await settle()
    assert not closing.done()
    await finish_all(executor, closing.done)
    assert [await outcome(t) for t in tasks] == ["A", "B", "C", "D", "E", "F"]


async def test_close_twice_the_second_waits_for_the_first() -> None:
    batcher, _, executor = make()
    tasks = await saturate(batcher, executor, ["d"])
    first = asyncio.create_task(batcher.close())
    await settle()
    second = asyncio.create_task(batcher.close())
    await settle()
    assert not second.done()  # it used to return at once, with work still queued
    await finish_all(executor, lambda: first.done() and second.done())
    assert [await outcome(t) for t in tasks] == ["A", "B", "C", "D"]
    await batcher.close()


async def test_cancelled_close_still_answers_every_caller() -> None:
    """Cancelling the task that awaits close() used to cancel the collector (and with it
    the batch it held and the queued texts); the shutdown now goes on without it."""
    batcher, _, executor = make()
    tasks = await saturate(batcher, executor, ["d", "e"])
    closing = asyncio.create_task(batcher.close())
    await settle()
    closing.cancel()
    await settle()
    assert closing.cancelled()
    again = asyncio.create_task(batcher.close())
    await finish_all(executor, again.done)
    assert [await outcome(t) for t in tasks] == ["A", "B", "C", "D", "E"]


async def test_a_backpressured_caller_cancelled_during_close_does_not_block_the_others() -> None:
    batcher, _, executor = make()
    a, b, c, d, e, f = await saturate(batcher, executor, ["d", "e", "f"])
    closing = asyncio.create_task(batcher.close())
    await settle()
    e.cancel()
    await finish_all(executor, closing.done)
    assert [await outcome(t) for t in (a, b, c, d, f)] == ["A", "B", "C", "D", "F"]
    assert e.cancelled()


async def test_classify_many_blocked_in_backpressure_when_close_races() -> None:
    for hops in HOPS:
        batcher, _, executor = make()
        a, b, c = await saturate(batcher, executor, [])
        many = asyncio.create_task(batcher.classify_many(["d", "e", "f"]), name="many")
        await settle()
        executor.finish_next()
        closing = close_after(batcher, hops)
        await finish_all(executor, closed(closing))
        assert [await outcome(t) for t in (a, b, c)] == ["A", "B", "C"]
        assert await outcome(many) in (["D", "E", "F"], BatcherClosedError), hops


async def test_callers_after_close_begins_are_refused() -> None:
    batcher, _, executor = make()
    tasks = await saturate(batcher, executor, [])
    closing = asyncio.create_task(batcher.close())
    await settle()
    with pytest.raises(BatcherClosedError):
        await asyncio.wait_for(batcher.classify("late"), HANG_GUARD)
    with pytest.raises(BatcherClosedError):
        await asyncio.wait_for(batcher.classify_many(["late", "later"]), HANG_GUARD)
    await finish_all(executor, closing.done)
    assert [await outcome(t) for t in tasks] == ["A", "B", "C"]
    with pytest.raises(BatcherClosedError):
        await asyncio.wait_for(batcher.classify("after"), HANG_GUARD)


async def test_close_while_a_due_batch_fills_waiting_for_a_worker() -> None:
    """close() while the collector, its batch due and the worker busy, is still taking
    texts (``_fill_until_a_worker_is_free``) with callers blocked on the full queue."""
    for hops in HOPS:
        batcher, _, executor = make(max_batch=3, max_pending=1)
        first = [asyncio.create_task(batcher.classify(t), name=t) for t in ("a", "b", "c")]
        await settle()
        assert executor.waiting == 1  # a full batch goes at once, holding the only worker
        more = [asyncio.create_task(batcher.classify(t), name=t) for t in ("d", "e", "f", "g")]
        await settle()
        executor.finish_next()
        closing = close_after(batcher, hops)
        await finish_all(executor, closed(closing))
        got = [await outcome(t) for t in first + more]
        assert got[:3] == ["A", "B", "C"], hops
        for text, result in zip("defg", got[3:], strict=True):
            assert result in (text.upper(), BatcherClosedError), (hops, got)
