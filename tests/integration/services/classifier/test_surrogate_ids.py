"""Ids that differ only in a lone surrogate escape (``"s-\\ud800"``, ``"s-\\udbff"``: valid
JSON) are two events in PostgreSQL, and two conversations: both decoded to ``"s-\\ufffd"``,
so the aggregator kept the first and the second was lost, neither stored nor dead-lettered
(review finding: the test fails on the code before the fix). A redelivered record is still
stored once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from services_proc import log_tail, running
from sink_outage import produce
from sqlalchemy import select
from tw_testing import topic_records, wait_until

from services.classifier.config import ClassifierSettings
from shared.db.models import ScoredEventRow
from shared.events import surrogate_free_id
from shared.kafka.clients import ensure_topics
from shared.redact import pseudonymise
from shared.topics import Topics

pytestmark = pytest.mark.integration


async def test_ids_that_differ_only_in_a_lone_surrogate_are_stored_as_two_events(
    service_settings: Callable[..., Any], tiny_models: Path, sessions: Any, tmp_path: Path, unique: str
) -> None:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.news_raw, topics.chat_raw, topics.text_scored])
    now = datetime.now(UTC).isoformat()
    # built from pairs: ruff reads two literal keys that differ in a lone surrogate as one (F601)
    ids, texts = [f"{unique}-n\ud800", f"{unique}-n\udbff"], ["Acme profits collapse", "Globex wins a contract"]
    news = dict(zip(ids, texts, strict=True))
    chats = {f"{unique}-c1": f"{unique}-conv \ud83d", f"{unique}-c2": f"{unique}-conv \udc00"}
    news_values = [json.dumps({"id": i, "text": t, "event_time": now}).encode() for i, t in news.items()]
    chat_values = [
        json.dumps({"id": i, "conversation_id": c, "text": "my card was declined", "event_time": now}).encode()
        for i, c in chats.items()
    ]
    assert all(b"\\ud" in v for v in news_values[:2])  # the escapes travel as JSON writes them
    await produce(settings, topics.news_raw, [*news_values, news_values[0]])  # the first one redelivered
    await produce(settings, topics.chat_raw, chat_values)

    key = settings.pseudonym_key.get_secret_value().encode()
    expected_news = {pseudonymise(surrogate_free_id(i), key) for i in news}
    expected_conversations = {pseudonymise(surrogate_free_id(c), key) for c in chats.values()}
    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    with (
        running("classifier", settings, tmp_path, **env),
        running("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}"),
    ):

        async def stored() -> list[ScoredEventRow]:
            async with sessions() as s:
                q = select(ScoredEventRow).where(
                    ScoredEventRow.id.in_([*expected_news, *(pseudonymise(i, key) for i in chats)])
                )
                return list((await s.execute(q)).scalars())

        try:
            await wait_until(lambda: _count_is(stored, 4), timeout=90)
        except AssertionError:
            raise AssertionError(log_tail(tmp_path, "classifier") + log_tail(tmp_path, "aggregator")) from None
        rows = await stored()
    assert {r.id for r in rows if r.stream == "news"} == expected_news and len(expected_news) == 2
    conversations = {r.conversation_id for r in rows if r.stream == "chat"}
    assert conversations == expected_conversations and len(conversations) == 2
    assert await topic_records(settings, Topics.dlq(topics.news_raw)) == []
    assert await topic_records(settings, Topics.dlq(topics.chat_raw)) == []


async def _count_is(stored: Callable[[], Any], n: int) -> bool:
    return len(await stored()) == n
