"""Through the running router: chats it cannot route as they came are handled, not lost
and not a crash. A chat scored without an intent was skipped in silence (never sent, never
dead-lettered, not counted); a routing rule naming a queue that cannot be a Kafka topic
(``vip desk``) stopped the router at start-up, and while running kept every later edit of
the routing table from taking effect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from services_proc import running
from sink_outage import produce
from sqlalchemy import delete, select
from tw_testing import scored_chat, topic_records, wait_until

from services.router.config import RouterSettings
from services.router.policy import DEFAULT_ROUTES, HUMAN, QUEUES
from shared.db.models import RoutedEvent, RoutingRule
from shared.events import RoutedChat, ScoredEvent
from shared.kafka import dlq_ops
from shared.kafka.clients import ensure_topics

pytestmark = pytest.mark.integration


async def _ledger(sessions: Any, unique: str) -> dict[str, str]:
    async with sessions() as s:
        rows = await s.execute(select(RoutedEvent.id, RoutedEvent.queue).where(RoutedEvent.id.like(f"{unique}-%")))
        return {row.id: row.queue for row in rows}


async def _queue_ids(settings: RouterSettings, queue: str) -> list[str]:
    return [
        RoutedChat.model_validate_json(r.value).id for r in await topic_records(settings, settings.topics.queue(queue))
    ]


async def test_a_chat_scored_without_an_intent_is_dead_lettered_with_the_reason_and_the_next_routed(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    settings: RouterSettings = service_settings(RouterSettings)
    topic = settings.topics.text_scored
    await ensure_topics(settings.kafka, [topic, *(settings.topics.queue(q) for q in QUEUES)])
    conv = f"conv-{unique}"
    bare = ScoredEvent.model_validate_json(scored_chat(f"{unique}-bare", "card_declined", conv))
    no_intent = bare.model_copy(update={"intent": None}).to_bytes()
    ok = scored_chat(f"{unique}-ok", "card_declined", conv)

    async def one_letter() -> bool:
        return len(await dlq_ops.list_entries(settings.kafka, topic, 10)) >= 1

    with running("router", settings, tmp_path, TW_ROUTER_GROUP_ID=f"rt-{unique}"):
        await produce(settings, topic, [no_intent, ok], key=conv.encode())
        await wait_until(lambda: _has(_ledger(sessions, unique), f"{unique}-ok"), timeout=60)
        await wait_until(one_letter, timeout=30)
    letters = await dlq_ops.list_entries(settings.kafka, topic, 10)
    assert [e.value for e in letters] == [no_intent]
    assert letters[0].meta is not None and "intent" in letters[0].meta.reason, letters[0].meta
    assert await _ledger(sessions, unique) == {f"{unique}-ok": DEFAULT_ROUTES["card_declined"]}
    assert await _queue_ids(settings, DEFAULT_ROUTES["card_declined"]) == [f"{unique}-ok"]
    assert await _queue_ids(settings, HUMAN) == []


async def _has(pending: Any, key: str) -> bool:
    return key in await pending


async def test_a_rule_naming_a_queue_kafka_cannot_name_sends_its_chats_to_human_and_the_rest_as_ruled(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    """``vip desk`` (a space) is no Kafka topic name: creating its topic is refused. Before,
    the router stopped at start-up (TopicCreationError), every restart again."""
    settings: RouterSettings = service_settings(RouterSettings)
    topic = settings.topics.text_scored
    await ensure_topics(settings.kafka, [topic, *(settings.topics.queue(q) for q in QUEUES)])
    vip, conv = f"vip_{unique}", f"conv-{unique}"
    async with sessions.begin() as s:
        s.add(RoutingRule(intent=vip, queue=f"vip desk {unique}"))
    try:
        with running("router", settings, tmp_path, TW_ROUTER_GROUP_ID=f"rt-{unique}"):
            await produce(
                settings,
                topic,
                [scored_chat(f"{unique}-vip", vip, conv), scored_chat(f"{unique}-card", "card_declined", conv)],
                key=conv.encode(),
            )
            await wait_until(lambda: _has(_ledger(sessions, unique), f"{unique}-card"), timeout=60)
    finally:
        async with sessions.begin() as s:
            await s.execute(delete(RoutingRule).where(RoutingRule.intent == vip))
    assert await _ledger(sessions, unique) == {f"{unique}-vip": HUMAN, f"{unique}-card": "cards"}
    assert await _queue_ids(settings, HUMAN) == [f"{unique}-vip"]
    assert await _queue_ids(settings, "cards") == [f"{unique}-card"]
