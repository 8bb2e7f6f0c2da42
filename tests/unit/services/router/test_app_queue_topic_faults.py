"""The router's handler when a queue topic's creation fails for a moment, or a queue topic is
deleted while the router runs, on a broker that does not auto-create topics (a fake one).
Every CreateTopics error was taken as a refusal: a NOT_CONTROLLER or REQUEST_TIMED_OUT while
the controller moved dead-lettered the chat and committed its offset. Now a retriable error
retries the batch, and only a permanent refusal dead-letters. And a queue topic, once created,
was known to exist for ever: deleted meanwhile, the send waited for its metadata at every retry
of the batch, for ever. Now such a send failure makes the batch's queue topics unknown again,
and the retry creates them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError
from router_fakes import Broker
from tw_testing import scored_chat

from services.router import app
from services.router.config import RouterSettings
from services.router.persist import Recorded, to_send
from shared.events import RoutedChat
from shared.kafka.batches import Handler, _is_retryable
from shared.kafka.sink import SinkClients

RETIRED = "retired_desk"  # a recorded queue no longer in the routing table
CARDS = "cards"  # the table's queue for card_declined


class Router:
    """The router's handler over a fake ledger and ``broker``: ``ledger`` holds the recorded
    decisions (a chat not in it is recorded to the table's queue on first sight)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, broker: Broker) -> None:
        self.settings = RouterSettings()
        self.broker = broker
        self.ledger: dict[str, Recorded] = {}
        self.marked: list[str] = []
        self.handle: Handler | None = None
        self.offset = 0

        async def load_routes(_: Any) -> dict[str, str]:
            return {"card_declined": CARDS}

        async def record_decisions(_: Any, decided: Sequence[RoutedChat]) -> list[RoutedChat]:
            for r in decided:
                self.ledger.setdefault(r.id, Recorded(r.queue, r.priority, r.reason, sent=False))
            return to_send(decided, self.ledger)

        async def mark_sent(_: Any, ids: Sequence[str]) -> None:
            self.marked.extend(ids)
            for i in ids:
                self.ledger[i] = self.ledger[i]._replace(sent=True)

        async def run_sink(*, make_handler: Any, **_: Any) -> None:
            clients = SinkClients(consumer=None, producer=broker, stop=asyncio.Event())  # type: ignore[arg-type]
            self.handle = await make_handler(clients)

        for name, fake in {
            "load_routes": load_routes,
            "record_decisions": record_decisions,
            "mark_sent": mark_sent,
            "run_sink": run_sink,
            "ensure_topics": broker.ensure_topics,
            "send_all": broker.send_all,
        }.items():
            monkeypatch.setattr(app, name, fake)

    async def start(self) -> None:
        await app.run(self.settings)

    def batch(self, chat_id: str) -> list[ConsumerRecord[bytes, bytes]]:
        self.offset += 1
        value = scored_chat(chat_id, "card_declined", "conv-1")
        topic = self.settings.topics.text_scored
        return [ConsumerRecord(topic, 0, self.offset, 0, 0, b"conv-1", value, None, 6, len(value), [])]

    async def retried(self, records: list[ConsumerRecord[bytes, bytes]], tries: int = 3) -> list[BaseException]:
        """Handle ``records`` as the sink does: a retryable failure is tried again, up to ``tries``;
        the failures seen (the last one raised if every try failed or it is not retryable)."""
        assert self.handle is not None
        seen: list[BaseException] = []
        for _ in range(tries):
            try:
                await self.handle(records)
                return seen
            except Exception as exc:
                seen.append(exc)
                if not _is_retryable(exc):
                    raise
        raise seen[-1]


@pytest.mark.parametrize(
    "error",
    [
        "NOT_CONTROLLER (error code 41)",
        "REQUEST_TIMED_OUT (error code 7)",
        "UNKNOWN_TOPIC_OR_PARTITION (error code 3)",  # aiokafka's retriable=True
        "UNKNOWN (error code 89)",  # THROTTLING_QUOTA_EXCEEDED, which aiokafka does not know
    ],
)
async def test_a_retriable_create_topics_error_retries_the_batch_not_dead_letters_it(
    monkeypatch: pytest.MonkeyPatch, error: str
) -> None:
    settings = RouterSettings()
    retired = settings.topics.queue(RETIRED)
    broker = Broker({settings.topics.text_scored}, fail={retired: [error]})
    router = Router(monkeypatch, broker)
    await router.start()
    router.ledger["chat-1"] = Recorded(RETIRED, False, "recorded before the rule was removed", sent=False)
    failures = await router.retried(router.batch("chat-1"))
    # was: dead-lettered QueueTopicRefused at once, the offset committed: the chat never reached its queue
    assert broker.letters == [], broker.letters
    assert len(failures) == 1 and error in str(failures[0]), failures
    assert broker.sent == [(retired, "chat-1")]
    assert router.marked == ["chat-1"]


@pytest.mark.parametrize(
    "error",
    [
        "POLICY_VIOLATION (error code 44)",
        "INVALID_TOPIC_EXCEPTION (error code 17)",
        "INVALID_REPLICATION_FACTOR (error code 38)",
        "TOPIC_AUTHORIZATION_FAILED (error code 29)",
        "INVALID_CONFIG (error code 40)",
        "a refusal without a code",
    ],
)
async def test_a_permanent_refusal_still_dead_letters_at_once(monkeypatch: pytest.MonkeyPatch, error: str) -> None:
    settings = RouterSettings()
    broker = Broker({settings.topics.text_scored}, fail={settings.topics.queue(RETIRED): [error] * 5})
    router = Router(monkeypatch, broker)
    await router.start()
    router.ledger["chat-2"] = Recorded(RETIRED, False, "recorded before the rule was removed", sent=False)
    assert await router.retried(router.batch("chat-2")) == []
    assert broker.sent == [] and router.marked == []
    assert len(broker.letters) == 1


async def test_a_mix_of_retriable_and_permanent_errors_retries_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch with a chat for a refused queue and one for a queue whose creation timed out: retried
    (not the second chat dead-lettered with the first); on the retry the refused one is dead-lettered
    and the other sent."""
    settings = RouterSettings()
    refused, slow = settings.topics.queue(RETIRED), settings.topics.queue("slow_desk")
    broker = Broker(
        {settings.topics.text_scored},
        fail={refused: ["POLICY_VIOLATION (error code 44)"] * 5, slow: ["REQUEST_TIMED_OUT (error code 7)"]},
    )
    router = Router(monkeypatch, broker)
    await router.start()
    router.ledger["a"] = Recorded(RETIRED, False, "r", sent=False)
    router.ledger["b"] = Recorded("slow_desk", False, "r", sent=False)
    records = [*router.batch("a"), *router.batch("b")]
    failures = await router.retried(records)
    assert len(failures) == 1
    assert broker.sent == [(slow, "b")] and router.marked == ["b"]
    assert len(broker.letters) == 1


@pytest.mark.parametrize("missing_error", [KafkaTimeoutError, UnknownTopicOrPartitionError])
async def test_a_queue_topic_deleted_while_running_is_created_again_on_the_retry(
    monkeypatch: pytest.MonkeyPatch, missing_error: type[Exception]
) -> None:
    settings = RouterSettings()
    cards = settings.topics.queue(CARDS)
    broker = Broker({settings.topics.text_scored})
    broker.missing_error = missing_error
    router = Router(monkeypatch, broker)
    await router.start()  # creates the table's topics up front
    assert cards in broker.topics
    assert await router.retried(router.batch("chat-1")) == []
    broker.topics.discard(cards)  # an operator deletes the queue's topic
    # was: the retry sent to the topic still "known to exist", waited on its metadata again: for ever
    failures = await router.retried(router.batch("chat-2"))
    assert [type(f) for f in failures] == [missing_error]
    assert cards in broker.topics
    assert broker.sent == [(cards, "chat-1"), (cards, "chat-2")]
    assert router.marked == ["chat-1", "chat-2"]
    assert broker.letters == []
