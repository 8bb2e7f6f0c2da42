"""The classifier's per-batch pipeline: decode -> classify -> score -> publish.

Built from injected parts so tests run it on a real broker without faust.
The caller acknowledges the batch only after this returns."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from services.classifier.classify import Classify, Verdicts
from services.classifier.config import ClassifierSettings
from services.classifier.decode import Decoded, decode_batch, failed
from services.classifier.publish import publish
from services.classifier.score import build_scored
from shared.entities import EntityMatcher
from shared.events import ScoredEvent
from shared.kafka.dlq import DeadLetterWriter, FailedRecord
from shared.kafka.records import InRecord
from shared.metrics import metrics

log = logging.getLogger(__name__)
SERVICE = "classifier"


class ClassifierPipeline:
    def __init__(
        self,
        settings: ClassifierSettings,
        classify: Classify,
        producer: AIOKafkaProducer,
        dlq: DeadLetterWriter,
        matcher: Callable[[], EntityMatcher],
    ) -> None:
        self.settings = settings
        self.classify = classify
        self.producer = producer
        self.dlq = dlq
        self.matcher = matcher
        self.m = metrics()

    async def __call__(self, records: Sequence[InRecord]) -> int:
        """Process one batch; returns how many scored events were published."""
        self.m.batch_size.labels(SERVICE).observe(len(records))
        for rec in records:
            self.m.events_in.labels(SERVICE, rec.topic).inc()
        good, bad = decode_batch(records, self.settings.topics)
        if good:
            verdicts, more_bad = await self._classify(good)
            bad.extend(more_bad)
            scored = self._score(good, verdicts)
            await publish(self.producer, self.settings.topics.text_scored, scored)
            self.m.events_out.labels(SERVICE, "text.scored").inc(len(scored))
        for record in bad:
            await self.dlq.write(record)
            self.m.dead_letters.labels(SERVICE, record.topic, record.error_class).inc()
        bad_places = {(b.topic, b.partition, b.offset) for b in bad}
        for rec in records:
            self.dlq.guard.record(failed=(rec.topic, rec.partition, rec.offset) in bad_places)
        return len(records) - len(bad)

    async def _classify(self, good: list[Decoded]) -> tuple[Verdicts, list[FailedRecord]]:
        start = time.perf_counter()
        try:
            verdicts = await self.classify([d.event for d in good])
        except Exception:
            log.exception("batch classification failed; retrying one by one")
            return await self._one_by_one(good)
        self.m.inference_latency.labels("batch").observe(time.perf_counter() - start)
        return verdicts, []

    async def _one_by_one(self, good: list[Decoded]) -> tuple[Verdicts, list[FailedRecord]]:
        sentiment, intent, bad, keep = [], [], [], []
        for d in good:
            try:
                v = await self.classify([d.event])
            except Exception as exc:  # noqa: BLE001 - this one record cannot be classified
                bad.append(failed(d.record, "ClassificationError", f"{type(exc).__name__}: {exc}"))
                continue
            keep.append(d)
            sentiment.extend(v.sentiment)
            intent.extend(v.intent)
        good[:] = keep
        return Verdicts(sentiment, intent), bad

    def _score(self, good: list[Decoded], verdicts: Verdicts) -> list[ScoredEvent]:
        received = datetime.now(UTC)
        matcher = self.matcher()
        return [
            build_scored(
                d.event,
                s,
                i,
                matcher=matcher,
                received=received,
                max_future_skew_s=self.settings.max_future_skew_s,
                storage_chars=self.settings.storage_text_chars,
            )
            for d, s, i in zip(good, verdicts.sentiment, verdicts.intent, strict=True)
        ]
