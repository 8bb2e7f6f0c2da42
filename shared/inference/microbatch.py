"""Async dynamic micro-batching in front of a synchronous classifier.

Callers ``await classify(text)`` or ``classify_many(texts)``. One collector task
gathers up to ``max_batch`` texts or waits ``max_wait_ms`` after the first one,
whichever comes first, and hands the batch to a bounded ``ThreadPoolExecutor``
(while every worker is busy, a due batch keeps taking texts up to ``max_batch``):
inference never runs on the event loop, so Kafka heartbeats keep going. At most
``workers`` batches run at once; the pending queue holds ``max_pending`` texts and
then makes callers wait (backpressure). ``close()`` finishes queued work first;
every call gets its result or :class:`BatcherClosedError`, never waits for ever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Protocol, TypeVar

from shared.inference.settings import InferenceSettings

log = logging.getLogger(__name__)

R_co = TypeVar("R_co", covariant=True)
R = TypeVar("R")


class Predictor(Protocol[R_co]):
    """Anything with a synchronous batch ``predict`` (e.g. ``Classifier``)."""

    def predict(self, texts: Sequence[str]) -> Sequence[R_co]:
        """One result per text, in order."""
        ...


class BatcherClosedError(RuntimeError):
    """``classify`` was called after ``close()``, or its text was still waiting to be
    queued (or could not run) when the batcher shut down."""


@dataclass
class BatcherStats:
    """Counters for tests and status endpoints."""

    batches: int = 0
    texts: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    largest_batch: int = 0


_Item = tuple[str, "asyncio.Future[R]"]
_STOP = object()


class MicroBatcher(Generic[R]):
    """Collects texts into batches and runs them off the event loop."""

    def __init__(
        self,
        predictor: Predictor[R],
        *,
        max_batch: int = 64,
        max_wait_ms: float = 10.0,
        max_pending: int = 1024,
        workers: int = 1,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        if max_batch < 1 or max_pending < 1 or workers < 1:
            raise ValueError("max_batch, max_pending and workers must be >= 1")
        self._predictor = predictor
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_pending = max_pending
        self.workers = workers
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tonewatch-inference")
        self._queue: asyncio.Queue[object] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._collector: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False
        self._drained = False  # the collector is gone: nothing takes texts from the queue
        self._closing: asyncio.Task[None] | None = None
        self.stats = BatcherStats()

    @classmethod
    def from_settings(cls, predictor: Predictor[R], settings: InferenceSettings) -> MicroBatcher[R]:
        """Batcher configured from :class:`InferenceSettings`."""
        return cls(
            predictor,
            max_batch=settings.max_batch,
            max_wait_ms=settings.max_wait_ms,
            max_pending=settings.max_pending,
            workers=settings.executor_workers,
        )

    # ---- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        """Start the collector on the running loop (``classify`` does it lazily)."""
        if self._closed:
            raise BatcherClosedError("micro-batcher is closed")
        if self._collector is None:
            self._queue = asyncio.Queue(maxsize=self.max_pending)
            self._slots = asyncio.Semaphore(self.workers)
            self._collector = asyncio.create_task(self._collect(), name="microbatch-collector")

    async def close(self) -> None:
        """Stop accepting texts, finish everything queued, release the executor.

        Every call returns when the shutdown is over (a second call waits for the first);
        cancelling a caller of ``close()`` does not stop the shutdown."""
        self._closed = True
        if self._closing is None:
            self._closing = asyncio.create_task(self._shutdown(), name="microbatch-close")
        await asyncio.shield(self._closing)

    async def _shutdown(self) -> None:
        collector, queue = self._collector, self._queue
        if collector is not None and queue is not None:
            if not collector.done():
                await queue.put(_STOP)
                if self._drained:  # the collector ended meanwhile: pass the wake-ups on
                    self._fail_leftovers(queue)
            await asyncio.wait((collector,))  # its own end fails whatever is left
            if not collector.cancelled() and collector.exception() is not None:
                log.error("micro-batch collector failed", exc_info=collector.exception())
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        if self._own_executor:
            self._executor.shutdown(wait=False)

    async def __aenter__(self) -> MicroBatcher[R]:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @staticmethod
    def _fail_leftovers(queue: asyncio.Queue[object]) -> None:
        # Texts queued behind the stop marker: callers that were blocked on a full queue
        # when close() began. Each get wakes the next caller blocked in put(); that one
        # finds the collector gone and calls this again (see _enqueue).
        while not queue.empty():
            item = queue.get_nowait()
            if isinstance(item, tuple):
                _fail(item[1])

    @property
    def pending(self) -> int:
        """Texts queued and not yet taken into a batch."""
        return self._queue.qsize() if self._queue is not None else 0

    # ---- API ------------------------------------------------------------------------
    async def classify(self, text: str) -> R:
        """Result for one text (waits while the pending queue is full)."""
        future = await self._enqueue(text)
        return await future

    async def classify_many(self, texts: Sequence[str]) -> list[R]:
        """Results for many texts, in order; they may span several batches."""
        futures: list[asyncio.Future[R]] = []
        try:
            for text in texts:
                futures.append(await self._enqueue(text))
        except BaseException:  # closed or cancelled part-way: skip the texts already queued
            for future in futures:
                future.cancel()
            raise
        return list(await asyncio.gather(*futures))

    async def _enqueue(self, text: str) -> asyncio.Future[R]:
        if self._closed:
            raise BatcherClosedError("micro-batcher is closed")
        self.start()
        assert self._queue is not None
        queue = self._queue
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        try:
            await queue.put((text, future))
        except BaseException:  # cancelled while waiting for room: nothing was queued
            future.cancel()
            raise
        if self._drained:
            # This caller waited for room (backpressure) and got it only after the collector
            # had stopped and close() had emptied the queue: nobody will take this text.
            self._fail_leftovers(queue)
        return future

    # ---- internals ------------------------------------------------------------------
    async def _collect(self) -> None:
        assert self._queue is not None and self._slots is not None
        queue = self._queue
        batch: list[_Item[R]] = []
        try:
            await self._collect_batches(queue, batch)
        finally:
            # normally after the stop marker; also when cancelled or failed: a batch taken
            # but not handed to a worker, and every queued text, get the closed error
            self._drained = True
            for _, future in batch:
                _fail(future)
            self._fail_leftovers(queue)

    async def _collect_batches(self, queue: asyncio.Queue[object], batch: list[_Item[R]]) -> None:
        """Hands batches to workers until the stop marker; ``batch`` is the one in hand."""
        assert self._slots is not None
        loop = asyncio.get_running_loop()
        stop = False
        while not stop:
            first = await queue.get()
            if first is _STOP:
                break
            batch.append(first)  # type: ignore[arg-type]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    try:
                        async with asyncio.timeout_at(deadline):
                            item = await queue.get()
                    except TimeoutError:
                        break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            if stop or not self._slots.locked():
                await self._slots.acquire()
            else:
                stop = await self._fill_until_a_worker_is_free(batch)
            task = asyncio.create_task(self._run(list(batch)))
            batch.clear()
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _fill_until_a_worker_is_free(self, batch: list[_Item[R]]) -> bool:
        """Hold a due batch until a worker is free, taking the texts that arrive meanwhile
        (up to ``max_batch``): cut at its deadline, a batch of one went to the next free
        worker while a backlog waited behind it. Returns with the worker slot held; True
        when ``close()`` was seen."""
        assert self._queue is not None and self._slots is not None
        queue = self._queue
        slot = asyncio.ensure_future(self._slots.acquire())
        getter: asyncio.Future[object] | None = None
        stop = False
        try:
            while not slot.done() and len(batch) < self.max_batch:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    getter = asyncio.ensure_future(queue.get())
                    await asyncio.wait((slot, getter), return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()  # not done: it has taken nothing from the queue
                        continue
                    item = getter.result()
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            await slot  # the batch goes to the next free worker, whatever it holds
        except BaseException:  # cancelled: take nothing more, hold no slot
            if getter is not None:
                getter.cancel()
            if slot.done() and not slot.cancelled() and slot.exception() is None:
                self._slots.release()
            else:
                slot.cancel()
            raise
        return stop

    async def _run(self, batch: list[_Item[R]]) -> None:
        assert self._slots is not None
        live = [(text, fut) for text, fut in batch if not fut.done()]
        stats = self.stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            if not live:
                return
            texts = [text for text, _ in live]
            loop = asyncio.get_running_loop()
            try:
                results = await loop.run_in_executor(self._executor, self._predictor.predict, texts)
                if len(results) != len(texts):
                    raise RuntimeError(f"predict returned {len(results)} results for {len(texts)} texts")
            except Exception as exc:  # delivered to every caller of this batch
                log.exception("inference batch of %d texts failed", len(texts))
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                return
            except BaseException:  # cancelled (e.g. the loop shutting down): callers are told
                for _, fut in live:
                    _fail(fut)
                raise
            for (_, fut), result in zip(live, results, strict=True):
                if not fut.done():
                    fut.set_result(result)
            stats.batches += 1
            stats.texts += len(texts)
            stats.largest_batch = max(stats.largest_batch, len(texts))
        finally:
            stats.in_flight -= 1
            self._slots.release()


def _fail(future: asyncio.Future[R]) -> None:
    if not future.done():
        future.set_exception(BatcherClosedError("micro-batcher closed before this text ran"))
