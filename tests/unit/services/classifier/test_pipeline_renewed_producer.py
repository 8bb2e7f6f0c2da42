"""A producer the pipeline renews after a refused batch is never lost: a broker fault once
stopping (``ClassifierClosed``) while the batch's events are sent alone on it raised before
``publish`` returned it, so ``aclose`` never stopped it ("Unclosed AIOKafkaProducer") and, after an
earlier renewal, the pipeline went on pointing at the producer it had stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from services.classifier import publish as publish_module
from services.classifier.classify import ClassifierClosed
from services.classifier.config import ClassifierSettings
from services.classifier.pipeline import ClassifierPipeline, Prepared
from shared.events import Score, ScoredEvent


class _Producer:
    def __init__(self, name: str) -> None:
        self.name = name
        self.started = False
        self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def __repr__(self) -> str:
        return self.name


def _event(i: int) -> ScoredEvent:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    score = Score(label="neutral", confidence=0.8, probs={"neutral": 0.8}, model="m", version="v1")
    return ScoredEvent(
        id=f"e{i}", stream="news", event_time=now, received_time=now, text=f"t{i}", entities=["_all"], sentiment=score
    )


@pytest.mark.parametrize("earlier_renewal", [False, True])
async def test_a_renewed_producer_is_stopped_by_aclose_when_publish_ends_in_classifier_closed(
    monkeypatch: pytest.MonkeyPatch, earlier_renewal: bool
) -> None:
    shared = _Producer("shared")
    made: list[_Producer] = []
    stop = asyncio.Event()

    def new_producer() -> Any:
        made.append(_Producer(f"renewed-{len(made) + 1}"))
        return made[-1]

    async def send_all(producer: Any, records: Iterable[Any], **_: Any) -> int:
        records = list(records)
        if len(records) > 1:  # the batch: refused (one event over max.message.bytes)
            raise MessageSizeTooLargeError("the batch is too large")
        stop.set()  # SIGTERM, then the broker goes away while each event is sent alone
        raise KafkaConnectionError("the broker is unreachable")

    monkeypatch.setattr(publish_module, "send_all", send_all)
    pipeline = ClassifierPipeline(
        ClassifierSettings(),
        None,  # type: ignore[arg-type]  # finish does not classify
        shared,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]  # nothing is dead-lettered
        lambda: None,  # type: ignore[arg-type,return-value]
        stop=stop,
        new_producer=new_producer,
    )
    if earlier_renewal:  # an earlier batch's refusal left the pipeline on a producer of its own
        earlier = await pipeline._renew(shared)  # type: ignore[arg-type]
        pipeline.producer = earlier
    batch = Prepared(records=[], scored=[_event(1), _event(2)], bad=[], sources=[])
    with pytest.raises(ClassifierClosed):
        await pipeline.finish(batch)
    renewed = made[-1]
    assert renewed.started and pipeline.producer is renewed  # was: the shared one, or the stopped earlier one
    await pipeline.aclose()
    assert all(p.stopped for p in made), made  # was: the renewed one never stopped
    assert not shared.stopped  # the dead-letter writer's, its owner's to stop
    assert pipeline.producer is shared
