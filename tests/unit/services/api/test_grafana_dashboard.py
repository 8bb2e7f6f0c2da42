"""dashboards/grafana.json stays valid and in step with the metrics the services export."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from services.api.observe import http_metrics
from shared.metrics import metrics

DASHBOARD = Path(__file__).resolve().parents[4] / "dashboards" / "grafana.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",), "info": ("_info",)}


def exported_series() -> set[str]:
    registry = CollectorRegistry()
    metrics.__wrapped__(registry)
    http_metrics.__wrapped__(registry)
    return {f"{fam.name}{s}" for fam in registry.collect() for s in SUFFIXES.get(fam.type, ("",))}


def test_dashboard_queries_only_exported_metrics() -> None:
    doc = json.loads(DASHBOARD.read_text())
    panels = [p for p in doc["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\btonewatch_[a-z_]+", e)}
    series = exported_series()
    assert used <= series, used - series
    wanted = {
        "tonewatch_events_in_total",
        "tonewatch_events_out_total",
        "tonewatch_dead_letters_total",
        "tonewatch_batch_size_bucket",
        "tonewatch_inference_latency_seconds_bucket",
        "tonewatch_inference_provider_info",
        "tonewatch_consumer_lag",
        "tonewatch_db_flush_seconds_bucket",
        "tonewatch_alerts_fired_total",
        "tonewatch_webhook_failures_total",
    }
    assert wanted <= used, wanted - used
    for p in panels:
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and p["datasource"]["uid"] == "${datasource}", p["title"]
