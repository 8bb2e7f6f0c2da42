"""The classifier's per-batch pipeline: decode -> classify -> score (``prepare``),
then publish and dead-letter (``finish``).

Built from injected parts so tests run it on a real broker without faust.
The caller acknowledges the batch only after this returns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from services.classifier.classify import ClassifierClosed, Classify, Verdicts
from services.classifier.config import ClassifierSettings
from services.classifier.decode import Decoded, decode_batch, failed
from services.classifier.publish import publish
from services.classifier.score import build_scored
from shared.entities import EntityMatcher
from shared.events import ScoredEvent
from shared.kafka.clients import make_producer
from shared.kafka.dlq import DeadLetterWriter, FailedRecord
from shared.kafka.records import InRecord
from shared.metrics import metrics

log = logging.getLogger(__name__)
SERVICE = "classifier"
MODEL_PATIENCE_S = 120.0
"""How long a batch is retried while the models fail on a known-good text too. Then the
classifier stops (exit 1, the batch unacknowledged): a lost GPU or a broken CUDA context
mostly needs a fresh process, and a replica that keeps its partitions while it cannot
classify holds them back from the healthy ones."""
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0


class ModelUnavailable(RuntimeError):
    """The models fail on a known-good text too: an infrastructure fault, not the records'.
    Nothing is dead-lettered for it."""


@dataclass(frozen=True)
class Prepared:
    """A classified batch waiting to be published."""

    records: list[InRecord]
    scored: list[ScoredEvent]
    bad: list[FailedRecord]
    sources: list[InRecord] = field(default_factory=list)
    """The record each scored event came from (the same order): what is dead-lettered
    when the scored topic refuses the event."""


class ClassifierPipeline:
    def __init__(
        self,
        settings: ClassifierSettings,
        classify: Classify,
        producer: AIOKafkaProducer,
        dlq: DeadLetterWriter,
        matcher: Callable[[], EntityMatcher],
        *,
        stop: asyncio.Event | None = None,
        model_patience_s: float = MODEL_PATIENCE_S,
        new_producer: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        self.settings = settings
        self.classify = classify
        self.producer = producer
        """Publishes the scored events; replaced after the scored topic refused one
        (:meth:`_renew`). The one given stays the dead-letter writer's."""
        self._shared_producer = producer
        self._new_producer = new_producer or (lambda: make_producer(settings.kafka, client_id=SERVICE))
        self.dlq = dlq
        self.matcher = matcher
        self.stop = stop if stop is not None else asyncio.Event()
        self.model_patience_s = model_patience_s
        self.m = metrics()

    async def __call__(self, records: Sequence[InRecord]) -> int:
        """Process one batch; returns how many scored events were published."""
        return await self.finish(await self.prepare(records))

    async def prepare(self, records: Sequence[InRecord]) -> Prepared:
        """Decode, classify and score a batch; nothing leaves the process yet.

        The caller may run this for the next batch while :meth:`finish` of the
        previous one waits on the broker, so the model is not idle during publishing."""
        self.m.batch_size.labels(SERVICE).observe(len(records))
        per_topic = Counter(rec.topic for rec in records)
        for topic, count in per_topic.items():
            self.m.events_in.labels(SERVICE, topic).inc(count)
        # 13 ms of CPU a megabyte of JSON (0.1 s a default batch, 0.9 s at the largest): in a
        # thread, as scoring is, so the loop keeps serving the consumer meanwhile
        good, bad = await asyncio.to_thread(decode_batch, records, self.settings.topics)
        scored: list[ScoredEvent] = []
        sources: list[InRecord] = []
        if good:
            good, verdicts, more_bad = await self._classify(good)
            bad.extend(more_bad)
            # redaction and entity tagging: 90 ms of CPU a batch at 4,000 stored characters,
            # seconds at 100,000; in a thread, the loop keeps serving the consumer meanwhile
            scored, sources, unscorable = await asyncio.to_thread(self._score, good, verdicts, self.matcher())
            bad.extend(unscorable)
        return Prepared(list(records), scored, bad, sources)

    async def finish(self, batch: Prepared) -> int:
        """Publish the scored events and dead-letter the failures, waiting for the
        broker's acks; returns how many scored events were published. A scored event
        the topic refuses (larger than its ``max.message.bytes``, say) dead-letters its
        record, with the refusal as its reason, and the rest of the batch is published
        (:func:`~services.classifier.publish.publish`, on a new producer).

        A broker fault once ``stop`` is set raises :class:`ClassifierClosed`: the batch is
        left unacknowledged and re-read by the next run, rather than retried past the
        shutdown's grace period."""
        bad = list(batch.bad)
        if batch.scored:
            topic = self.settings.topics.text_scored
            published = await publish(self.producer, topic, batch.scored, renew=self._renew, stop=self.stop)
            self.producer = published.producer
            for refusal in published.refused:
                bad.append(failed(batch.sources[refusal.index], type(refusal.error).__name__, refusal.reason(topic)))
            self.m.events_out.labels(SERVICE, "text.scored").inc(len(batch.scored) - len(published.refused))
        for record in bad:
            try:
                written = await self.dlq.write(record)
            except KafkaError as exc:
                if not self.stop.is_set():
                    raise
                # the writer gives up on a broker fault once stopping: nothing is lost, the
                # batch stays unacknowledged and is re-read (its dead letters found written)
                raise ClassifierClosed(
                    f"stopping while dead-lettering failed ({exc}): the batch is left unacknowledged"
                ) from exc
            if written:  # not one found written already (a batch re-read)
                self.m.dead_letters.labels(SERVICE, record.topic, record.error_class).inc()
        bad_places = {(b.topic, b.partition, b.offset) for b in bad}
        for rec in batch.records:
            self.dlq.guard.record(failed=(rec.topic, rec.partition, rec.offset) in bad_places)
        return len(batch.records) - len(bad)

    async def _renew(self, old: AIOKafkaProducer) -> AIOKafkaProducer:
        """A new producer, started, for the scored events, after ``old`` sent one the topic
        refused (its sequence for that partition has a gap). ``old`` is stopped unless it is
        the dead-letter writer's too (its other partitions have no gap).

        The new one becomes :attr:`producer` at once, not when :func:`publish` returns: a
        publish that ends in an exception after renewing (a broker fault once stopping:
        :class:`ClassifierClosed`) left it unknown to :meth:`aclose` (never stopped:
        "Unclosed AIOKafkaProducer") and :attr:`producer` on the stopped ``old``."""
        new = self._new_producer()
        try:
            await new.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await new.stop()
            raise
        self.producer = new
        if old is not self._shared_producer:
            with contextlib.suppress(Exception):
                await old.stop()
        return new

    async def aclose(self) -> None:
        """Stop the producer this pipeline started for the scored events, if any (the one
        it was given is its owner's to stop)."""
        if self.producer is not self._shared_producer:
            producer, self.producer = self.producer, self._shared_producer
            await producer.stop()

    async def _classify(self, good: list[Decoded]) -> tuple[list[Decoded], Verdicts, list[FailedRecord]]:
        """The records classified, their verdicts, and the records the models fail on.

        While the models fail on a known-good text too (:class:`ModelUnavailable`) the batch
        is retried with backoff, as a broker fault is, and nothing is dead-lettered (each of
        its records was, and the ratio guard then acknowledged the batch as it stopped).
        After ``model_patience_s`` the error is raised (the process stops, the batch
        unacknowledged); on a stop the batch is left to the next run."""
        backoff = FIRST_BACKOFF_S
        give_up_at = time.monotonic() + self.model_patience_s
        while True:
            try:
                return await self._classify_once(good)
            except ModelUnavailable as exc:
                if time.monotonic() + backoff > give_up_at:
                    raise ModelUnavailable(f"{exc} for {self.model_patience_s:.0f}s: giving up") from exc
                log.warning(
                    "%s; nothing dead-lettered, pausing and retrying the batch of %d in %.1fs", exc, len(good), backoff
                )
                self.m.infra_retries.labels(SERVICE).inc()
                await self._pause(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _classify_once(self, good: list[Decoded]) -> tuple[list[Decoded], Verdicts, list[FailedRecord]]:
        start = time.perf_counter()
        try:
            verdicts = await self.classify([d.event for d in good])
        except ClassifierClosed:
            raise  # stopping: the batch stays unacknowledged and is re-read, not dead-lettered
        except Exception:
            log.exception("batch classification failed; retrying one by one")
            return await self._one_by_one(good)
        self.m.inference_latency.labels("batch").observe(time.perf_counter() - start)
        return good, verdicts, []

    async def _one_by_one(self, good: list[Decoded]) -> tuple[list[Decoded], Verdicts, list[FailedRecord]]:
        sentiment, intent, bad, keep = [], [], [], []
        for d in good:
            try:
                v = await self.classify([d.event])
            except ClassifierClosed:
                raise
            except Exception as exc:  # noqa: BLE001 - this one record cannot be classified
                bad.append(failed(d.record, "ClassificationError", f"{type(exc).__name__}: {exc}"))
                continue
            keep.append(d)
            sentiment.extend(v.sentiment)
            intent.extend(v.intent)
        if bad:
            await self._check_models()
        return keep, Verdicts(sentiment, intent), bad

    async def _check_models(self) -> None:
        """Raise :class:`ModelUnavailable` when the models fail on a known-good text too:
        the records that failed alone are then not at fault."""
        try:
            await self.classify.probe()
        except ClassifierClosed:
            raise
        except Exception as exc:
            raise ModelUnavailable(
                f"the models fail on a known-good text too (an infrastructure fault): {type(exc).__name__}: {exc}"
            ) from exc

    async def _pause(self, seconds: float) -> None:
        """Wait before a retry; on a stop, raise :class:`ClassifierClosed` (the batch is re-read)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        if self.stop.is_set():
            raise ClassifierClosed("stopping while the models fail: the batch is left unacknowledged")

    def _score(
        self, good: list[Decoded], verdicts: Verdicts, matcher: EntityMatcher
    ) -> tuple[list[ScoredEvent], list[InRecord], list[FailedRecord]]:
        """Scored events, the record of each, and the records whose verdict no scored event can carry (a model
        that gave NaN probabilities for one text) or that scoring fails on in a way nobody
        foresaw: those are dead-lettered, the rest go on; raised, one would stop the
        classifier on that batch after every restart. Scoring touches no dependency, so
        such an error is never an infrastructure fault. Runs in a worker thread."""
        received = datetime.now(UTC)
        key = self.settings.pseudonym_key.get_secret_value().encode()
        scored: list[ScoredEvent] = []
        sources: list[InRecord] = []
        bad: list[FailedRecord] = []
        for d, s, i in zip(good, verdicts.sentiment, verdicts.intent, strict=True):
            try:
                scored.append(
                    build_scored(
                        d.event,
                        s,
                        i,
                        matcher=matcher,
                        received=received,
                        max_future_skew_s=self.settings.max_future_skew_s,
                        storage_chars=self.settings.storage_text_chars,
                        pseudonym_key=key,
                    )
                )
                sources.append(d.record)
            except ValidationError as exc:
                bad.append(failed(d.record, "ClassificationError", f"the verdict is no valid scored event: {exc}"))
            except Exception as exc:  # scoring is pure (no I/O): the record's fault, not the infrastructure's
                log.exception("record %s could not be scored; dead-lettered", d.record.place)
                bad.append(failed(d.record, type(exc).__name__, f"cannot score: {exc}"))
        return scored, sources, bad
