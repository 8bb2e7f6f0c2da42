"""Through the running services: a record whose header key is not UTF-8 (``b"tw\\xff\\xfekey"``)
stopped the classifier ("We experienced a crash!"), the aggregator and the router at the
fetch, on every restart, and the records after it were never read. Now it is processed like
any other (or dead-lettered with its reason, the key kept as backslash escapes), and the
records on both sides of it are too."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka.producer import message_accumulator, producer
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from services_proc import log_tail, running
from sqlalchemy import func, select
from tw_testing import scored_chat, topic_records, wait_until

from services.aggregator.config import AggregatorSettings
from services.classifier.config import ClassifierSettings
from services.router.config import RouterSettings
from services.router.policy import QUEUES
from shared.config import ServiceSettings
from shared.db.models import RoutedEvent, TrendMinute
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics, make_producer

pytestmark = pytest.mark.integration

ODD = ("tw\\xff\\xfekey", b"v")
"""The odd header as the services read it: its bad bytes as backslash escapes."""


class _OddKey(str):
    """A header key the pure-Python batch builder writes as bytes that are not UTF-8 (the C
    builder refuses a ``str`` subclass)."""

    def encode(self, *_: Any, **__: Any) -> bytes:  # type: ignore[override]
        return b"tw\xff\xfekey"


async def _produce(
    settings: ServiceSettings, topic: str, values: list[tuple[bytes, bool]], key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Send ``values`` (with the odd header where flagged) in one go: one partition, and
    the odd record in one batch with its neighbours."""
    monkeypatch.setattr(message_accumulator, "DefaultRecordBatchBuilder", _DefaultRecordBatchBuilderPy)
    monkeypatch.setattr(producer, "DefaultRecordBatchBuilder", _DefaultRecordBatchBuilderPy)
    sender = make_producer(settings.kafka, client_id="test")
    await sender.start()
    try:
        for value, odd in values:
            await sender.send(topic, value, key=key, headers=[(_OddKey("x"), b"v")] if odd else [])
        await sender.flush()
    finally:
        await sender.stop()


def _healthy(log_dir: Path, service: str, proc: Any) -> None:
    log = log_tail(log_dir, service, 200_000)
    assert proc.poll() is None, log[-3000:]
    assert "We experienced a crash" not in log and "UnicodeDecodeError" not in log, log[-3000:]
    assert "header key is not UTF-8" in log  # said, not silent


async def test_the_classifier_scores_the_record_dead_letters_a_bad_one_with_the_key_and_goes_on(
    service_settings: Callable[..., Any],
    tiny_models: Path,
    tmp_path: Path,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    now = datetime.now(UTC).isoformat()

    def news(mid: str) -> bytes:
        return json.dumps({"id": f"{unique}-{mid}", "text": "Acme up", "event_time": now}).encode()

    sent = [(news("1"), False), (news("odd"), True), (b"not json", True), (news("3"), False)]
    await _produce(settings, topics.news_raw, sent, b"k", monkeypatch)
    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    with running("classifier", settings, tmp_path, **env) as proc:

        async def scored() -> bool:
            assert proc.poll() is None, log_tail(tmp_path, "classifier")
            ids = {json.loads(r.value)["id"] for r in await topic_records(settings, topics.text_scored)}
            return ids == {f"{unique}-1", f"{unique}-odd", f"{unique}-3"}

        await wait_until(scored, timeout=90)
        (letter,) = await wait_until(lambda: dlq_ops.list_entries(settings.kafka, topics.news_raw), timeout=30)
        _healthy(tmp_path, "classifier", proc)
    assert letter.value == b"not json" and letter.meta is not None and letter.meta.reason
    assert ODD in letter.headers


async def test_the_aggregator_counts_the_record_and_its_neighbours(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings: AggregatorSettings = service_settings(AggregatorSettings)
    topic = settings.topics.text_scored
    await ensure_topics(settings.kafka, [topic])
    entity = f"E{unique}"
    now = datetime.now(UTC).isoformat()
    score = {"label": "negative", "confidence": 0.9, "probs": {"negative": 0.9}, "model": "m", "version": "v1"}

    def event(mid: str) -> bytes:
        return json.dumps(
            {"id": f"{unique}-{mid}", "stream": "news", "event_time": now, "received_time": now, "text": "t"}
            | {"sentiment": score, "entities": [entity]}
        ).encode()

    async def counted() -> int:
        async with sessions() as s:
            q = select(func.coalesce(func.sum(TrendMinute.count), 0)).where(TrendMinute.entity == entity)
            return int((await s.execute(q)).scalar() or 0)

    env = {"TW_AGGREGATOR_GROUP_ID": f"agg-{unique}", "TW_AGGREGATOR_MAX_WAIT_MS": "1000"}
    with running("aggregator", settings, tmp_path, **env) as proc:
        await wait_until(lambda: "aggregator consuming" in log_tail(tmp_path, "aggregator", 200_000), timeout=60)
        sent = [(event("1"), False), (event("odd"), True), (event("3"), False)]
        await _produce(settings, topic, sent, b"k", monkeypatch)
        await wait_until(lambda: _is(counted(), 3), timeout=60)
        _healthy(tmp_path, "aggregator", proc)
    assert await dlq_ops.list_entries(settings.kafka, topic) == []


async def test_the_router_routes_the_record_and_its_neighbours(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings: RouterSettings = service_settings(RouterSettings)
    topic = settings.topics.text_scored
    await ensure_topics(settings.kafka, [topic, *(settings.topics.queue(q) for q in QUEUES)])
    conv = f"conv-{unique}"
    ids = [f"{unique}-1", f"{unique}-odd", f"{unique}-3"]

    async def routed() -> set[str]:
        async with sessions() as s:
            rows = await s.execute(select(RoutedEvent.id).where(RoutedEvent.id.like(f"{unique}-%")))
            return set(rows.scalars())

    with running("router", settings, tmp_path, TW_ROUTER_GROUP_ID=f"rt-{unique}") as proc:
        sent = [(scored_chat(i, "card_declined", conv), i.endswith("odd")) for i in ids]
        await _produce(settings, topic, sent, conv.encode(), monkeypatch)
        await wait_until(lambda: _is(routed(), set(ids)), timeout=60)
        _healthy(tmp_path, "router", proc)
    assert await dlq_ops.list_entries(settings.kafka, topic) == []


async def _is(got: Any, expected: object) -> bool:
    return bool(await got == expected)
