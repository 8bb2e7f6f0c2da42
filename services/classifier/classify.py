"""Stage 2: run the models off the event loop in a bounded executor."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from shared.events import RawEvent
from shared.inference.engine import Classifier, Prediction
from shared.inference.metrics import InferenceMetrics, inference_metrics

PROBE_TEXT = "Thanks, the parcel arrived on time."
"""A short plain sentence any working model classifies: when the models fail on it too,
the fault is theirs (a lost GPU, a broken runtime), not the records'."""


class ClassifierClosed(RuntimeError):
    """The models were closed (the service is stopping): not a fault of the records."""


@dataclass(frozen=True)
class Verdicts:
    sentiment: list[Prediction]
    intent: list[Prediction | None]


class Classify:
    """Sentiment for every event, intent for chats, ``workers`` batches at once. The
    models' ONNX runs share the process's cores (:class:`~shared.inference.engine.CoreBudget`):
    more workers never run more than cores / intra-op threads at once."""

    def __init__(
        self,
        sentiment: Classifier,
        intent: Classifier | None,
        workers: int = 1,
        metrics: InferenceMetrics | None = None,
    ) -> None:
        """``metrics``: where the models' ``tonewatch_inference_*`` metrics go (default: the
        process's, on the registry ``/metrics`` serves); a model that has its own keeps them."""
        self.sentiment = sentiment
        self.intent = intent
        for model in (sentiment, intent):
            if isinstance(model, Classifier) and model.metrics is None:
                model.use_metrics(metrics if metrics is not None else inference_metrics())
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="classify")
        self._closed = False

    def _run(self, events: Sequence[RawEvent]) -> Verdicts:
        sentiment = self.sentiment.predict([e.text for e in events])
        intent: list[Prediction | None] = [None] * len(events)
        chats = [i for i, e in enumerate(events) if e.stream == "chat"]
        if chats and self.intent is not None:
            for i, p in zip(chats, self.intent.predict([events[i].text for i in chats]), strict=True):
                intent[i] = p
        return Verdicts(sentiment, intent)

    def _probe(self) -> None:
        self.sentiment.predict([PROBE_TEXT])
        if self.intent is not None:
            self.intent.predict([PROBE_TEXT])

    async def __call__(self, events: Sequence[RawEvent]) -> Verdicts:
        if self._closed:
            raise ClassifierClosed("the classifier is stopping")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run, list(events))

    async def probe(self) -> None:
        """Run every model on :data:`PROBE_TEXT`; raises what the models raise."""
        if self._closed:
            raise ClassifierClosed("the classifier is stopping")
        await asyncio.get_running_loop().run_in_executor(self._pool, self._probe)

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
