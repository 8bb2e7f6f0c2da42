"""The classifier's dead-letter metric counts the dead letters written: not a record the
writer skips because it dead-lettered it already (a batch re-read after a stop)."""

from __future__ import annotations

from typing import Any

from services.classifier.config import ClassifierSettings
from services.classifier.pipeline import SERVICE, ClassifierPipeline, Prepared
from shared.entities import EntityMatcher
from shared.kafka.dlq import DeadLetterWriter, FailedRecord
from shared.kafka.records import InRecord
from shared.metrics import metrics


class _Producer:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_and_wait(self, topic: str, **_: object) -> None:
        self.sent.append(topic)


async def test_a_dead_letter_skipped_as_written_already_is_not_counted() -> None:
    settings = ClassifierSettings()
    topic = settings.topics.news_raw
    producer: Any = _Producer()
    writer = DeadLetterWriter(producer, SERVICE)
    none: Any = None  # no scored events to publish
    pipeline = ClassifierPipeline(settings, none, none, writer, lambda: EntityMatcher([]))
    record = InRecord(topic, 0, 5, None, b"garbage", [], None)
    bad = FailedRecord(topic, 0, 5, None, b"garbage", [], "MetricTestError", "not JSON")
    counter = metrics().dead_letters.labels(SERVICE, topic, "MetricTestError")
    before = counter._value.get()
    for _ in range(2):  # the same batch again: its dead letter is written once
        await pipeline.finish(Prepared([record], [], [bad]))
    assert producer.sent == [f"{topic}.dlq"]
    assert counter._value.get() - before == 1
