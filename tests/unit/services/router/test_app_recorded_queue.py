"""The router's handler on a chat recorded in the routing ledger but not yet sent, whose queue
has since left the routing table and whose topic was deleted, on a broker that does not
auto-create topics (a fake one; the local stack's broker auto-creates). The router created
topics only for the table's queues: the send waited on the missing topic, timed out and the
batch was retried for ever. Now the recorded decision is honoured (the queue's topic is
created, the chat sent there), and where the broker refuses that topic the chat is
dead-lettered with a reason naming the queue, not retried."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from router_fakes import Broker
from tw_testing import scored_chat

from services.router import app
from services.router.config import RouterSettings
from services.router.persist import Recorded, to_send
from shared.events import RoutedChat
from shared.kafka.batches import Handler
from shared.kafka.dlq import parse_dlq_headers
from shared.kafka.sink import SinkClients
from shared.topics import Topics

RETIRED = "retired_desk"  # the recorded queue, no longer in the routing table


async def handle_once(monkeypatch: pytest.MonkeyPatch, broker: Broker, chat_id: str) -> list[str]:
    """Run the router's handler on one batch holding ``chat_id``, recorded to RETIRED and not
    sent; the ids it marked sent."""
    settings = RouterSettings()
    marked: list[str] = []
    ledger = {chat_id: Recorded(RETIRED, False, "recorded before the rule was removed", sent=False)}

    async def load_routes(_: Any) -> dict[str, str]:
        return {"card_declined": "cards"}

    async def record_decisions(_: Any, decided: Sequence[RoutedChat]) -> list[RoutedChat]:
        return to_send(decided, ledger)

    async def mark_sent(_: Any, ids: Sequence[str]) -> None:
        marked.extend(ids)

    async def run_sink(*, make_handler: Any, stop: Any, **_: Any) -> None:
        clients = SinkClients(consumer=None, producer=broker, stop=asyncio.Event())  # type: ignore[arg-type]
        handle: Handler = await make_handler(clients)
        value = scored_chat(chat_id, "card_declined", "conv-1")
        record = ConsumerRecord(settings.topics.text_scored, 0, 7, 0, 0, b"conv-1", value, None, 6, len(value), [])
        await handle([record])

    for name, fake in {
        "load_routes": load_routes,
        "record_decisions": record_decisions,
        "mark_sent": mark_sent,
        "run_sink": run_sink,
        "ensure_topics": broker.ensure_topics,
        "send_all": broker.send_all,
    }.items():
        monkeypatch.setattr(app, name, fake)
    await app.run(settings)
    return marked


async def test_a_recorded_chat_whose_queue_left_the_table_and_lost_its_topic_is_sent_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = RouterSettings()
    broker = Broker({settings.topics.text_scored})
    marked = await handle_once(monkeypatch, broker, "chat-1")  # raised KafkaTimeoutError: retried for ever
    assert settings.topics.queue(RETIRED) in broker.topics
    assert [(t, c.id, c.queue) for t, c in broker.chats] == [(settings.topics.queue(RETIRED), "chat-1", RETIRED)]
    assert marked == ["chat-1"]
    assert broker.letters == []


async def test_a_recorded_chat_whose_queue_topic_the_broker_refuses_is_dead_lettered_naming_the_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = RouterSettings()
    broker = Broker({settings.topics.text_scored}, refuse={settings.topics.queue(RETIRED)})
    marked = await handle_once(monkeypatch, broker, "chat-2")  # raised KafkaTimeoutError: retried for ever
    assert broker.sent == [] and marked == []  # unsent in the ledger: a replay sends it to its queue
    [(topic, headers)] = broker.letters
    assert topic == Topics.dlq(settings.topics.text_scored)
    meta = parse_dlq_headers(list(headers.items()))
    assert meta.error_class == "QueueTopicRefused" and meta.offset == 7, meta
    assert f"recorded queue '{RETIRED}'" in meta.reason and "refused" in meta.reason, meta.reason
