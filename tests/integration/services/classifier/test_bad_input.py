"""Bad input through the real broker: every poison record lands in the DLQ with
its reason, every good record is classified and counted exactly once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from services_proc import log_tail, running
from sink_outage import produce, stops_on_a_burst_of_bad_records
from sqlalchemy import func, select
from tw_testing import wait_until

from services.classifier.config import ClassifierSettings
from shared.db.models import ScoredEventRow
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics, make_producer

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


def good(i: int, **extra: Any) -> bytes:
    return json.dumps(
        {"id": f"good-{i}", "text": f"Markets steady in session {i}", "event_time": NOW.isoformat()} | extra
    ).encode()


POISON: list[tuple[bytes, str]] = [
    (b'{"id": "bad-1", "text": "unterminated', "JSONDecodeError"),
    (b'\xff\xfe{"text": "latin-1 bytes \xe9"}', "UnicodeDecodeError"),
    (b'{"id": "bad-3", "event_time": "2026-01-01T00:00:00Z"}', "ValidationError"),  # missing text
    (b'{"id": "bad-4", "text": ""}', "ValidationError"),  # empty text
    (b'{"id": "bad-5", "text": 12345}', "ValidationError"),  # wrong type
    (b'{"id": "bad-6", "text": "hi", "stream": "weather"}', "UnknownStream"),
    (b"[1, 2, 3]", "JSONDecodeError"),
    # out of datetime's range once in UTC: the agent crashed on these and stopped classifying
    (b'{"id": "bad-8", "text": "hi", "event_time": "0001-01-01T00:00:00+14:00"}', "ValidationError"),
    (b'{"id": "bad-9", "text": "hi", "event_time": "9999-12-31T23:59:59-14:00"}', "ValidationError"),
    # as large as the broker takes (its default 1 MiB): with the dead-letter headers it no
    # longer fit a DLQ topic at the default limit, and the classifier stopped on every restart
    (b'{"id": "bad-10", "text": 1, "pad": "' + b"x" * 1_048_260 + b'"}', "ValidationError"),
]


async def test_poison_and_edge_cases(
    service_settings: Callable[..., Any], tiny_models: Path, sessions: Any, tmp_path: Path, unique: str
) -> None:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topic = settings.topics.news_raw
    await ensure_topics(settings.kafka, [topic, settings.topics.chat_raw])
    records: list[bytes] = []
    for i in range(40):
        records.append(good(i))
        if i < len(POISON):
            records.append(POISON[i][0])
    records.append(good(0))  # duplicate id: counted once
    huge = ("Shares slide. " * 80_000)[:1_000_000]  # 1 MB of text, the contract maximum
    records.append(json.dumps({"id": "huge", "text": huge}).encode())
    records.append(good(100, event_time=(NOW + timedelta(days=400)).isoformat()))  # far future
    records.append(good(101, event_time="1999-01-01T00:00:00Z"))  # far past
    records.append(good(102, text="Shares \u0000 slide"))  # NUL: PostgreSQL text cannot hold it
    producer = make_producer(settings.kafka, client_id="test")
    await producer.start()
    try:
        for value in records:
            await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()

    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    with (
        running("classifier", settings, tmp_path, **env),
        running("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}"),
    ):

        async def stored() -> int:
            async with sessions() as s:
                q = (
                    select(func.count())
                    .select_from(ScoredEventRow)
                    .where(ScoredEventRow.id.in_([f"good-{i}" for i in (*range(40), 100, 101, 102)] + ["huge"]))
                )
                return int((await s.execute(q)).scalar() or 0)

        try:
            await wait_until(lambda: stored_ok(stored), timeout=90)
        except AssertionError:
            raise AssertionError(log_tail(tmp_path, "classifier")) from None
        dead = await wait_until(lambda: dlq_entries(settings, topic, len(POISON)), timeout=30)

    assert sorted(e.meta.error_class for e in dead if e.meta) == sorted(c for _, c in POISON)
    assert all(
        e.meta and e.meta.reason and e.meta.service == "classifier" and e.meta.original_topic == topic for e in dead
    )
    assert sorted(e.value for e in dead) == sorted(v for v, _ in POISON)  # original bytes kept
    async with sessions() as s:
        rows = {
            r.id: r
            for r in (
                await s.execute(
                    select(ScoredEventRow).where(
                        ScoredEventRow.id.in_(["huge", "good-100", "good-101", "good-102", "good-0"])
                    )
                )
            ).scalars()
        }
    assert len(rows["huge"].text) <= settings.storage_text_chars
    assert rows["good-100"].event_time <= rows["good-100"].received_time  # future time clamped
    assert rows["good-101"].event_time.year == 1999  # past time kept (late data)
    assert rows["good-102"].text == "Shares \ufffd slide"


async def stored_ok(stored: Callable[[], Any]) -> bool:
    return bool(await stored() == 44)


async def dlq_entries(settings: ClassifierSettings, topic: str, n: int) -> list[dlq_ops.DlqEntry] | None:
    entries = await dlq_ops.list_entries(settings.kafka, topic, 1000)
    return entries if len(entries) >= n else None


async def test_a_burst_of_bad_records_stops_the_classifier_and_each_is_dead_lettered_once(
    service_settings: Callable[..., Any], tiny_models: Path, sessions: Any, tmp_path: Path, unique: str
) -> None:
    """120 bad records in a row: more than TW_CLASSIFIER_DLQ_MAX_RATIO of recent records
    fail, so the classifier stops with code 1 (a misconfiguration, not bad data). Restarted
    with the ratio raised, as the runbook says, it goes on; every bad record is in the DLQ
    exactly once (the batch that tripped the guard was dead-lettered before the stop and
    is not read again)."""
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topic = settings.topics.news_raw
    await ensure_topics(settings.kafka, [topic, settings.topics.chat_raw])
    bad = [b"garbage %d" % i for i in range(120)]
    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    await stops_on_a_burst_of_bad_records("classifier", settings, tmp_path, topic, bad, **env)
    # a good record behind the bad ones (same key, same partition): once it is stored, the
    # restarted classifier has read everything before it; once it has stopped, it has
    # written every dead letter of what it read (a batch publishes before it dead-letters)
    await produce(settings, topic, [good(999)])

    async def good_stored() -> bool:
        async with sessions() as s:
            q = select(func.count()).select_from(ScoredEventRow).where(ScoredEventRow.id == "good-999")
            return bool((await s.execute(q)).scalar())

    with (
        running("classifier", settings, tmp_path, **env, TW_CLASSIFIER_DLQ_MAX_RATIO="1"),
        running("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}"),
    ):
        await wait_until(good_stored, timeout=90)
    dead = await dlq_ops.list_entries(settings.kafka, topic, 1000)
    assert sorted(e.value for e in dead) == sorted(bad)
