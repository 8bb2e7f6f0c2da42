"""Optional Prometheus metrics for inference; created on demand, never at import.

:func:`inference_metrics` is the process-wide set on the default registry, the one a
service's ``/metrics`` serves; the classifier service wires it into its models
(:class:`services.classifier.classify.Classify`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, Histogram

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class InferenceMetrics:
    """Batch size, latency, padding efficiency and the active provider, per task."""

    batch_size: Histogram
    latency_seconds: Histogram
    padding_efficiency: Gauge
    active: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None, prefix: str = "tonewatch_inference") -> InferenceMetrics:
        """Register the metrics in ``registry`` (default: the global one; once per
        process there, so use :func:`inference_metrics` or pass a fresh
        ``CollectorRegistry`` in tests).

        The latency histogram is ``<prefix>_predict_seconds``: ``tonewatch_inference_latency_seconds``
        is :mod:`shared.metrics`' (the classifier's whole batch), and prometheus_client refuses
        a name registered twice in one registry."""
        reg = registry if registry is not None else REGISTRY
        labels = ("task",)
        return cls(
            batch_size=Histogram(
                f"{prefix}_batch_size",
                "Texts per predict call.",
                labels,
                buckets=_BATCH_BUCKETS,
                registry=reg,
            ),
            latency_seconds=Histogram(
                f"{prefix}_predict_seconds",
                "Wall time of one predict call (tokenizing, ONNX runs, softmax).",
                labels,
                buckets=_LATENCY_BUCKETS,
                registry=reg,
            ),
            padding_efficiency=Gauge(
                f"{prefix}_padding_efficiency",
                "Real tokens / computed tokens since start.",
                labels,
                registry=reg,
            ),
            active=Gauge(
                f"{prefix}_model_info",
                "1 for the model, provider and variant that serve.",
                ("task", "model", "version", "provider", "variant"),
                registry=reg,
            ),
        )


@functools.cache
def inference_metrics(registry: CollectorRegistry = REGISTRY) -> InferenceMetrics:
    """The process-wide inference metrics (one set per registry)."""
    return InferenceMetrics.create(registry)
