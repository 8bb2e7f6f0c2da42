"""The classifier: registry entry -> verified files -> ONNX session -> predictions.

``Classifier.load`` reads the variant's file once, verifies its sha256 (plus tokenizer
and labels) through the registry, picks the device (see :mod:`shared.inference.device`),
and opens one session per model file content and process, built from the very bytes it
verified. ``predict`` is synchronous; async
callers go through :class:`shared.inference.microbatch.MicroBatcher`.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from shared.inference.batching import (
    Bucket,
    FloatArray,
    PaddingStats,
    computed_tokens,
    pad_bucket,
    plan_buckets,
    scatter,
)
from shared.inference.device import (
    PROVIDERS,
    DeviceUnavailableError,
    Kind,
    explain,
    physical_cores,
    plan_device,
    warn_cpu_fallback,
)
from shared.inference.metrics import InferenceMetrics
from shared.inference.registry import VARIANT_PREFERENCE, ModelEntry, Registry, RegistryError
from shared.inference.session import CUDA_GRAPH_WIDTH_MULTIPLE, OrtModel, open_session
from shared.inference.settings import InferenceSettings
from shared.inference.tokenize import TextTokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prediction:
    """One text's result."""

    label: str
    confidence: float
    probs: dict[str, float]
    model: str
    version: str
    sha: str


def choose_variant(requested: str, kind: Kind, available: Sequence[str]) -> str:
    """The ONNX variant to load: the configured one, or the device's preference."""
    if requested != "auto":
        return requested
    for variant in VARIANT_PREFERENCE[kind]:
        if variant in available:
            return variant
    raise RegistryError(f"no variant usable on {kind}: want one of {VARIANT_PREFERENCE[kind]}, have {tuple(available)}")


RECHECK_S = 0.05
"""How often a run waiting for cores checks again without being woken (:meth:`CoreBudget.hold`)."""


class CoreBudget:
    """The physical cores the process's ONNX runs may keep busy at once.

    Each CPU run holds as many cores as its session's intra-op threads while it runs.
    Without it every :class:`Classifier` ran on its own: the classifier service's two
    batches in flight, one in the sentiment model and one in the intent model, each
    with its own pool of ``parallel_buckets`` workers, kept up to 4 single-thread runs
    going on 2 cores.

    A request for more threads than there are cores is clamped to all the cores: a run
    never needs more cores than exist, and waiting for them would never end. Callers
    are served first come, first served: a run that does not fit waits at the head of
    the line, and the ones behind it wait for it even when their smaller share is free.
    Before, whoever woke first took what was free, so a wide run (e.g. a model with
    intra-op threads >= cores) never found all cores free while single-thread runs of
    another model kept overlapping, and a wide run in a loop took all cores back before
    a waiting single-thread run woke, starving every other model. A narrow run still
    starts at once beside others while nobody waits in front of it."""

    def __init__(self, cores: int) -> None:
        self.cores = max(1, cores)
        self._free = self.cores
        self._cond = threading.Condition()
        self._line: deque[object] = deque()  # the waiting callers' tickets, oldest first

    def share(self, threads: int) -> int:
        """The cores a run with ``threads`` intra-op threads holds: 1 to all of them."""
        return min(max(1, threads), self.cores)

    @contextmanager
    def hold(self, threads: int) -> Iterator[None]:
        """Wait for this caller's turn and ``share(threads)`` free cores, and hold them."""
        n = self.share(threads)
        ticket = object()
        with self._cond:
            self._line.append(ticket)
            try:
                # Rechecked every RECHECK_S even without a wake-up: an exception landing
                # between another waiter's leaving the line and its notify_all (a signal
                # on the main thread) would otherwise leave the new head asleep for good,
                # every core free, and every later caller queued behind it.
                while not self._cond.wait_for(lambda: self._line[0] is ticket and self._free >= n, RECHECK_S):
                    pass
            finally:
                self._line.remove(ticket)  # also when interrupted: never block the line
                self._cond.notify_all()  # the next in line may fit in what is left
            self._free -= n
        try:
            yield
        finally:
            with self._cond:
                self._free += n
                self._cond.notify_all()


@functools.cache
def core_budget() -> CoreBudget:
    """The process-wide budget every CPU classifier shares: its physical cores."""
    return CoreBudget(physical_cores())


def softmax(logits: FloatArray) -> FloatArray:
    """Row-wise softmax, numerically stable."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: FloatArray = exp / exp.sum(axis=1, keepdims=True)
    return out


class Classifier:
    """A registered model ready to classify texts."""

    def __init__(
        self,
        entry: ModelEntry,
        model: OrtModel,
        tokenizer: TextTokenizer,
        settings: InferenceSettings,
        variant: str,
        sha: str,
        metrics: InferenceMetrics | None = None,
    ) -> None:
        self.entry = entry
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self._variant = variant
        self.sha = sha
        self.metrics: InferenceMetrics | None = None
        self.padding = PaddingStats()
        self.fallback_reasons: tuple[str, ...] = ()
        self.labels = entry.labels
        on_gpu = model.kind != "cpu"
        self.bucket_rows = settings.bucket_rows(on_gpu)
        self._graph_rows = self.bucket_rows if model.cuda_graphs else None
        self._width_multiple = CUDA_GRAPH_WIDTH_MULTIPLE if model.cuda_graphs else 1
        parallel = settings.parallel_buckets if not on_gpu else 1
        # CPU runs of every classifier share the process's cores (see CoreBudget)
        self._budget = core_budget() if not on_gpu else None
        self._run_threads = model.intra_op_threads if not on_gpu else 0
        self._pool = (
            ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="tonewatch-bucket") if parallel > 1 else None
        )
        if metrics is not None:
            self.use_metrics(metrics)

    def use_metrics(self, metrics: InferenceMetrics) -> None:
        """Observe every ``predict`` call in ``metrics`` from now on, and mark this model,
        provider and variant as serving (``<prefix>_model_info`` = 1)."""
        self.metrics = metrics
        entry = self.entry
        metrics.active.labels(entry.task, entry.name, entry.version, self.provider, self._variant).set(1)

    # ---- loading --------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        entry: ModelEntry,
        settings: InferenceSettings | None = None,
        registry: Registry | None = None,
        metrics: InferenceMetrics | None = None,
    ) -> Classifier:
        """Verify the entry's files and open a session on the configured device.

        Raises ``IntegrityError`` on a hash mismatch and
        :class:`~shared.inference.device.DeviceUnavailableError` when an explicit
        GPU device cannot be used.
        """
        settings = settings or InferenceSettings()
        registry = registry or Registry(entry.path.parent.parent)
        max_length = settings.max_length or entry.max_length
        limit = entry.position_limit
        if limit is not None and max_length > limit:
            source = "inference max_length setting" if settings.max_length else "card max_length"
            raise RegistryError(
                f"{entry.task}/{entry.version}: {source} {max_length} exceeds the model's position limit "
                f"of {limit} tokens; set max_length to {limit} or less"
            )
        plan = plan_device(settings.device, ort.get_available_providers())
        failures: list[str] = []
        for kind in plan.candidates:
            try:
                variant = choose_variant(settings.variant, kind, entry.available_variants())
            except RegistryError as exc:
                if kind == "cpu" or plan.requested != "auto":
                    raise
                failures.append(str(exc))
                continue
            verified = registry.read_variant(entry, variant)  # a hash mismatch is never a fallback
            try:
                model = open_session(verified, kind, settings, entry.inputs, max_length)
            except DeviceUnavailableError as exc:
                if plan.requested != "auto":
                    raise
                failures.append(str(exc))
                log.warning("inference: %s unusable, trying the next provider: %s", kind, exc)
                continue
            except Exception as exc:  # ORT raises bare pybind errors
                if kind == "cpu":
                    raise
                reason = explain(kind, f"{PROVIDERS[kind]} session failed: {exc}")
                if plan.requested != "auto":
                    raise DeviceUnavailableError(f"device={plan.requested!r}: {reason}") from exc
                failures.append(reason)
                log.warning("inference: %s unusable, trying the next provider: %s", kind, exc)
                continue
            sha = verified.sha256
            del verified  # the whole file: the session keeps what it needs
            if kind == "cpu" and plan.requested == "auto":
                warn_cpu_fallback(plan, failures)
            tokenizer = TextTokenizer.from_file(entry.tokenizer_path, max_length)
            clf = cls(entry, model, tokenizer, settings, variant, sha, metrics)
            clf.fallback_reasons = (*plan.skipped, *failures) if kind == "cpu" and plan.requested == "auto" else ()
            log.info(
                "inference: %s %s loaded: provider=%s variant=%s sha256=%s "
                "max_length=%d intra_op_threads=%d bucket_rows=%d",
                entry.name,
                entry.version,
                clf.provider,
                variant,
                clf.sha[:12],
                max_length,
                model.intra_op_threads,
                clf.bucket_rows,
            )
            return clf
        raise DeviceUnavailableError(f"no usable provider: {'; '.join(failures)}")

    # ---- inference ------------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        """Class probabilities, one row per text, in input order."""
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        enc = self.tokenizer.encode(texts, type_ids=self.model.has_token_type_ids)
        lengths = enc.lengths
        buckets = plan_buckets(lengths, self.bucket_rows, self._width_multiple)

        def run(bucket: Bucket) -> FloatArray:
            padded = pad_bucket(enc.ids, enc.type_ids, bucket, self.tokenizer.pad_id, self._graph_rows)
            if self._budget is None:
                return self.model.run(padded)
            with self._budget.hold(self._run_threads):
                return self.model.run(padded)

        if self._pool is not None and len(buckets) > 1:
            outputs = list(self._pool.map(run, buckets))  # ORT runs release the GIL
        else:
            outputs = [run(b) for b in buckets]
        self.padding.add(int(lengths.sum()), computed_tokens(buckets, self._graph_rows))
        return softmax(scatter(len(texts), buckets, outputs))

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Label, confidence and full probability vector for every text, in order."""
        start = time.perf_counter()
        probs = self.predict_proba(texts)
        best = probs.argmax(axis=1).tolist() if len(probs) else []
        labels, name, version, sha = self.labels, self.entry.name, self.entry.version, self.sha
        rows: list[list[float]] = probs.tolist()
        result = [
            Prediction(labels[k], row[k], dict(zip(labels, row, strict=True)), name, version, sha)
            for k, row in zip(best, rows, strict=True)
        ]
        if self.metrics is not None:
            task = self.entry.task
            self.metrics.batch_size.labels(task).observe(len(texts))
            self.metrics.latency_seconds.labels(task).observe(time.perf_counter() - start)
            self.metrics.padding_efficiency.labels(task).set(self.padding.efficiency)
        return result

    def close(self) -> None:
        """Stop the bucket threads (throughput mode); the session stays cached."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # ---- status ---------------------------------------------------------------------
    @property
    def provider(self) -> str:
        """The execution provider that really runs the model."""
        return self.model.providers[0]

    @property
    def variant(self) -> str:
        """Loaded ONNX variant: int8, fp16 or fp32."""
        return self._variant

    def describe(self) -> dict[str, Any]:
        """Status-endpoint view of the loaded model."""
        return {
            "task": self.entry.task,
            "model": self.entry.name,
            "version": self.entry.version,
            "sha256": self.sha,
            "variant": self._variant,
            "provider": self.provider,
            "providers": self.model.providers,
            "device_requested": self.settings.device,
            "max_length": self.tokenizer.max_length,
            "max_batch": self.settings.max_batch,
            "bucket_rows": self.bucket_rows,
            "intra_op_threads": self.model.intra_op_threads,
            "parallel_buckets": self.settings.parallel_buckets if self._pool is not None else 1,
            "io_binding": self.model.use_io_binding,
            "cuda_graphs": self.model.cuda_graphs,
            "padding_efficiency": round(self.padding.efficiency, 4),
            "fallback_reasons": list(self.fallback_reasons),
        }
