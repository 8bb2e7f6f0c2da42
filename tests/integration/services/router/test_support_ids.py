"""Chats keyed as support platforms key them flow raw -> classifier -> router and aggregator.

A conversation id with "+", a space or "#" (``jane+vip@example.com``, ``conv 42``,
``ticket#42``) was dead-lettered by the classifier as a ValidationError and never routed:
ids had to match ``[\\w.:@/-]``. Now any printable id is scored, routed and stored as sent,
and one holding an email address or a phone number only under its pseudonym."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from services_proc import log_tail, running
from sqlalchemy import select
from tw_testing import wait_until

from services.router.config import RouterSettings
from services.router.policy import QUEUES
from shared.db.models import RoutedEvent, ScoredEventRow
from shared.events import RoutedChat
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics, make_consumer, make_producer
from shared.redact import pseudonymise

pytestmark = pytest.mark.integration
PSEUDONYM_KEY = "integration-test-pseudonym-key"
EMAIL = "jane+vip@example.com"
PHONE = "whatsapp:+447911123456"  # how SMS and WhatsApp gateways key a conversation
# The reviewer's three examples, a phone-keyed chat, and an id of 128 characters that are 4
# bytes each in UTF-8.
CONVERSATIONS = [EMAIL, PHONE, "conv 42", "ticket#42", "\U0001f4ac" * 128]


def _stored(value: str) -> str:
    return pseudonymise(value, PSEUDONYM_KEY.encode())


async def test_chats_keyed_as_support_platforms_key_them_are_scored_routed_and_stored(
    service_settings: Callable[..., Any], tiny_models: Path, sessions: Any, tmp_path: Path, unique: str
) -> None:
    settings: RouterSettings = service_settings(RouterSettings)
    topics = settings.topics
    queue_topics = [topics.queue(q) for q in QUEUES]
    await ensure_topics(settings.kafka, [topics.chat_raw, topics.news_raw, topics.text_scored, *queue_topics])
    # Message ids as widened as the conversations': a space, "#", "+", and an email address.
    ids = {conv: f"{unique} {conv[:20]}#{i}+1" for i, conv in enumerate(CONVERSATIONS)}
    expected = {_stored(ids[conv]): _stored(conv) for conv in CONVERSATIONS}  # stored id -> conversation
    assert all(_stored(v).startswith("pii-") for v in (EMAIL, ids[EMAIL], PHONE, ids[PHONE]))
    now = datetime.now(UTC).isoformat()
    producer = make_producer(settings.kafka, client_id="test")
    await producer.start()
    try:
        for conv in CONVERSATIONS:
            chat = {"id": ids[conv], "conversation_id": conv, "text": "my card was declined twice", "event_time": now}
            await producer.send_and_wait(topics.chat_raw, json.dumps(chat).encode(), key=conv.encode())
    finally:
        await producer.stop()

    consumer = make_consumer(settings.kafka, *queue_topics, group_id=f"q-{unique}", client_id="test")
    await consumer.start()
    routed: dict[str, tuple[bytes | None, RoutedChat]] = {}
    env = {
        "TW_MODELS_DIR": str(tiny_models),
        "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}",
        "TW_CLASSIFIER_PSEUDONYM_KEY": PSEUDONYM_KEY,
    }
    try:
        with (
            running("classifier", settings, tmp_path, **env),
            running("router", settings, tmp_path, TW_ROUTER_GROUP_ID=f"rt-{unique}"),
            running("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}"),
        ):
            try:
                async with asyncio.timeout(90):
                    while len(routed) < len(CONVERSATIONS):
                        for records in (await consumer.getmany(timeout_ms=500)).values():
                            for r in records:
                                assert r.value is not None
                                msg = RoutedChat.model_validate_json(r.value)
                                routed[msg.id] = (r.key, msg)
            except TimeoutError:
                dead = await dlq_ops.list_entries(settings.kafka, topics.chat_raw)
                reasons = [e.meta.reason for e in dead if e.meta]
                raise AssertionError(f"routed {sorted(routed)}; dead-lettered: {reasons}") from None

            async def stored() -> dict[str, str | None]:
                async with sessions() as s:
                    q = select(ScoredEventRow.id, ScoredEventRow.conversation_id).where(
                        ScoredEventRow.id.in_(list(expected)), ScoredEventRow.stream == "chat"
                    )
                    rows = {row.id: row.conversation_id for row in await s.execute(q)}
                return rows if len(rows) == len(expected) else {}

            try:
                rows = await wait_until(stored, timeout=60)
            except AssertionError:
                raise AssertionError(log_tail(tmp_path, "aggregator")) from None
    finally:
        await consumer.stop()

    # Routed under the stored ids, keyed by the (pseudonymised) conversation: its order is kept.
    assert {i: (key, msg.conversation_id) for i, (key, msg) in routed.items()} == {
        i: (conv.encode(), conv) for i, conv in expected.items()
    }
    assert all(msg.reason and msg.queue in QUEUES for _, msg in routed.values())
    # Stored as sent, but the email address and the phone number only as their pseudonyms.
    assert rows == expected
    assert rows[_stored(ids[EMAIL])] == _stored(EMAIL)
    assert rows[_stored(ids[PHONE])] == _stored(PHONE)
    assert not [v for v in [*rows, *rows.values()] if v is not None and ("jane" in v or "7911" in v)]
    async with sessions() as s:
        ledger = set((await s.execute(select(RoutedEvent.id).where(RoutedEvent.id.in_(list(expected))))).scalars())
    assert ledger == set(expected)
    assert await dlq_ops.list_entries(settings.kafka, topics.chat_raw) == []
