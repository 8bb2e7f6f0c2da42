"""A stop leaves the batches it catches unacknowledged, and nothing after them is
acknowledged; a broker fault at the stop ends the batch instead of being retried past the
grace period; decoding runs off the event loop."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from services.classifier import pipeline as pipeline_module
from services.classifier.app import RunState, finish_in_order
from services.classifier.classify import ClassifierClosed, Classify
from services.classifier.config import ClassifierSettings
from services.classifier.pipeline import SERVICE, ClassifierPipeline, Prepared
from shared.entities import EntityMatcher
from shared.inference.engine import Prediction
from shared.kafka.dlq import DeadLetterWriter, FailedRecord
from shared.kafka.records import InRecord


class _LostGpu:
    """A model that fails on every text, as on a lost GPU."""

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


class _Producer:
    """Records the dead letters it is asked to write; ``down``: every send fails as in an outage."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.sent: list[str] = []
        self.tries = 0

    async def send_and_wait(self, topic: str, **_: object) -> None:
        self.tries += 1
        if self.down:
            raise KafkaConnectionError("the broker is unreachable")
        self.sent.append(topic)

    async def partitions_for(self, topic: str) -> set[int]:
        self.tries += 1
        raise KafkaConnectionError("the broker is unreachable")


def _record(settings: ClassifierSettings, offset: int, value: bytes) -> InRecord:
    return InRecord(settings.topics.news_raw, 0, offset, None, value, [], 1_700_000_000_000)


def _news(i: int) -> bytes:
    return json.dumps({"id": f"e{i}", "text": f"headline {i}", "event_time": "2026-01-01T00:00:00Z"}).encode()


class _Event:
    """Stands in for a faust event: acknowledging it is recorded."""

    def __init__(self, record: InRecord) -> None:
        self.record = record


async def test_nothing_after_a_batch_left_unacknowledged_at_a_stop_is_acknowledged() -> None:
    """SIGTERM while batch k retried on failing models left it unacknowledged, and the
    finisher went on: batch k+1, bad records only (never reaching the models), was
    dead-lettered and acknowledged, and faust committed past batch k (it skips its gap
    check before a partition's first commit), whose records were then never read again."""
    settings = ClassifierSettings()
    classify = Classify(_LostGpu(), None)  # type: ignore[arg-type]
    producer = _Producer()
    state = RunState()
    pipeline = ClassifierPipeline(
        settings, classify, producer, DeadLetterWriter(producer, SERVICE), lambda: EntityMatcher([]), stop=state.stop
    )  # type: ignore[arg-type]
    acked: list[int] = []

    async def finish(batch: Prepared, events: list[Any]) -> None:  # as the agent's
        await pipeline.finish(batch)
        acked.extend(ev.record.offset for ev in events)

    good = [_record(settings, i, _news(i)) for i in range(3)]
    bad = [_record(settings, i, b"{not json") for i in range(3, 6)]
    window: asyncio.Queue[tuple[asyncio.Task[Prepared], list[Any]]] = asyncio.Queue(maxsize=2)
    finishing = asyncio.create_task(finish_in_order(window, finish, state))
    try:
        for records in (good, bad):
            await window.put((asyncio.create_task(pipeline.prepare(records)), [_Event(r) for r in records]))
        await asyncio.sleep(0.3)  # batch k is retrying; batch k+1 is prepared, waiting for its turn
        assert acked == [] and not finishing.done()
        state.stop.set()
        await asyncio.wait_for(window.join(), timeout=5)
    finally:
        finishing.cancel()
        classify.close()
    assert acked == []  # was [3, 4, 5]
    assert producer.sent == []  # nor dead-lettered: the next run reads both batches again
    assert state.fatal is None  # a stop, not a failure: the process exits 0


async def test_a_batch_finished_before_the_one_left_unacknowledged_is_acknowledged() -> None:
    settings = ClassifierSettings()
    producer = _Producer()
    state = RunState()
    pipeline = ClassifierPipeline(
        settings, None, producer, DeadLetterWriter(producer, SERVICE), lambda: EntityMatcher([]), stop=state.stop
    )  # type: ignore[arg-type]
    acked: list[int] = []

    async def finish(batch: Prepared, events: list[Any]) -> None:
        await pipeline.finish(batch)
        acked.extend(ev.record.offset for ev in events)

    async def closed() -> Prepared:
        raise ClassifierClosed("stopping")

    first = [_record(settings, 0, b"{not json")]
    last = [_record(settings, 2, b"{not json")]
    window: asyncio.Queue[tuple[asyncio.Task[Prepared], list[Any]]] = asyncio.Queue()
    state.stop.set()
    await window.put((asyncio.create_task(pipeline.prepare(first)), [_Event(r) for r in first]))
    await window.put((asyncio.create_task(closed()), [_Event(_record(settings, 1, _news(1)))]))
    await window.put((asyncio.create_task(pipeline.prepare(last)), [_Event(r) for r in last]))
    finishing = asyncio.create_task(finish_in_order(window, finish, state))
    try:
        await asyncio.wait_for(window.join(), timeout=5)
    finally:
        finishing.cancel()
    assert acked == [0]
    assert len(producer.sent) == 1


class _Model:
    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        probs = {"negative": 0.1, "neutral": 0.8, "positive": 0.1}
        return [Prediction("neutral", 0.8, probs, "m", "v1", "sha") for _ in texts]


async def _scored(settings: ClassifierSettings) -> Prepared:
    classify = Classify(_Model(), None)  # type: ignore[arg-type]
    none: Any = None
    try:
        prepared = await ClassifierPipeline(settings, classify, none, none, lambda: EntityMatcher([])).prepare(
            [_record(settings, 0, _news(0))]
        )
    finally:
        classify.close()
    assert len(prepared.scored) == 1
    return prepared


async def test_publishing_through_a_broker_fault_stops_at_the_stop() -> None:
    """The scored events were retried for as long as the broker was down, stop or not:
    the shutdown outlasted its grace period and the process was killed."""
    settings = ClassifierSettings()
    producer = _Producer(down=True)
    stop = asyncio.Event()
    none: Any = None
    pipeline = ClassifierPipeline(settings, none, producer, none, lambda: EntityMatcher([]), stop=stop)  # type: ignore[arg-type]
    finishing = asyncio.create_task(pipeline.finish(await _scored(settings)))
    await asyncio.sleep(0.5)
    assert producer.tries >= 2 and not finishing.done()  # retried while running
    stop.set()
    try:
        with pytest.raises(ClassifierClosed, match="left unacknowledged"):
            await asyncio.wait_for(asyncio.shield(finishing), timeout=3)
    finally:
        finishing.cancel()


async def test_dead_lettering_through_a_broker_fault_at_the_stop_leaves_the_batch_unacknowledged() -> None:
    """The writer gives up once stopping; its KafkaError stopped the classifier as an
    unexpected error (exit 1) although nothing was lost: the batch is re-read."""
    settings = ClassifierSettings()
    producer = _Producer(down=True)
    stop = asyncio.Event()
    none: Any = None
    writer = DeadLetterWriter(producer, SERVICE, stop=stop)  # type: ignore[arg-type]
    pipeline = ClassifierPipeline(settings, none, producer, writer, lambda: EntityMatcher([]), stop=stop)  # type: ignore[arg-type]
    record = _record(settings, 7, b"{not json")
    bad = FailedRecord(record.topic, 0, 7, None, record.value, [], "ValueError", "not JSON")
    finishing = asyncio.create_task(pipeline.finish(Prepared([record], [], [bad])))
    await asyncio.sleep(0.3)
    stop.set()
    with pytest.raises(ClassifierClosed, match="left unacknowledged"):
        await asyncio.wait_for(finishing, timeout=3)


async def test_a_batch_is_decoded_in_a_worker_thread_in_the_order_it_came(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding ran on the event loop: 13 ms a megabyte of JSON, 0.9 s for a 64 MiB batch,
    with the consumer's fetches and the other batches waiting."""
    threads: list[bool] = []
    real = pipeline_module.decode_batch

    def decode(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread() is not threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "decode_batch", decode)
    settings = ClassifierSettings()
    none: Any = None
    pipeline = ClassifierPipeline(settings, none, none, none, lambda: EntityMatcher([]))
    records = [_record(settings, i, b"{not json" if i % 2 else b"[]") for i in range(6)]
    prepared = await pipeline.prepare(records)
    assert threads == [True]
    assert [b.offset for b in prepared.bad] == list(range(6))
