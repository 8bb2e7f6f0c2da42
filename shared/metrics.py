"""Prometheus metrics shared by the services. Created on first use, not at import."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclass(frozen=True)
class Metrics:
    events_in: Counter
    events_out: Counter
    dead_letters: Counter
    batch_size: Histogram
    inference_latency: Histogram
    provider: Gauge
    consumer_lag: Gauge
    db_flush_latency: Histogram
    infra_retries: Counter
    alerts_fired: Counter
    webhook_failures: Counter
    webhook_give_ups: Counter
    dedup_fallbacks: Counter
    alert_minutes_skipped: Counter
    sweep_lookback_cut: Counter
    alert_keys_failing: Gauge
    trend_events_too_old: Counter


@functools.cache
def metrics(registry: CollectorRegistry = REGISTRY) -> Metrics:
    """The process-wide metric objects (one set per registry)."""
    return Metrics(
        events_in=Counter("tonewatch_events_in", "Records consumed", ["service", "topic"], registry=registry),
        events_out=Counter(
            "tonewatch_events_out", "Records produced or stored", ["service", "sink"], registry=registry
        ),
        dead_letters=Counter(
            "tonewatch_dead_letters", "Records sent to a DLQ", ["service", "topic", "error_class"], registry=registry
        ),
        batch_size=Histogram(
            "tonewatch_batch_size",
            "Records per batch",
            ["service"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=registry,
        ),
        inference_latency=Histogram(
            "tonewatch_inference_latency_seconds",
            "Model latency per batch",
            ["model"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        ),
        provider=Gauge(
            "tonewatch_inference_provider_info",
            "Active inference provider (1 = active)",
            ["model", "provider", "variant"],
            registry=registry,
        ),
        consumer_lag=Gauge(
            "tonewatch_consumer_lag",
            "Records behind the log end",
            ["service", "topic", "partition"],
            registry=registry,
        ),
        db_flush_latency=Histogram(
            "tonewatch_db_flush_seconds", "Database transaction latency per batch", ["service"], registry=registry
        ),
        infra_retries=Counter(
            "tonewatch_infra_retries", "Batches retried after an infrastructure fault", ["service"], registry=registry
        ),
        alerts_fired=Counter("tonewatch_alerts_fired", "Alerts fired", ["rule", "severity"], registry=registry),
        webhook_failures=Counter("tonewatch_webhook_failures", "Failed webhook attempts", ["kind"], registry=registry),
        webhook_give_ups=Counter(
            "tonewatch_webhook_give_ups",
            "Webhook channels given up after failing transiently for TW_ALERTER_WEBHOOK_GIVE_UP_S",
            ["kind"],
            registry=registry,
        ),
        dedup_fallbacks=Counter(
            "tonewatch_alert_dedup_redis_unavailable",
            "Alert dedup fell back to PostgreSQL (Redis down)",
            registry=registry,
        ),
        alert_minutes_skipped=Counter(
            "tonewatch_alert_minutes_skipped",
            "Minutes live alert evaluation skipped, more than TW_ALERTER_MAX_STEPS behind",
            registry=registry,
        ),
        sweep_lookback_cut=Counter(
            "tonewatch_alert_sweep_lookback_cut",
            "Alerter sweeps whose lower bound the 2 h lookback cut (a bucket writer open longer)",
            registry=registry,
        ),
        alert_keys_failing=Gauge(
            "tonewatch_alert_keys_failing",
            "(stream, entity, model version) keys whose last evaluation raised, set aside and retried at each sweep",
            registry=registry,
        ),
        trend_events_too_old=Counter(
            "tonewatch_trend_events_too_old",
            "Events counted but past their stream's trend retention cutoff, in no trend bucket",
            ["service", "stream"],
            registry=registry,
        ),
    )


def serve(port: int | None) -> None:
    """Expose /metrics on ``port`` when configured."""
    if port:
        start_http_server(port)
