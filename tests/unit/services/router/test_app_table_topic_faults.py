"""The router's routing table load (at start and at each refresh) when creating the topic of a
table's queue, of human or of escalations fails for a moment, on a broker that does not
auto-create topics (a fake one). Every CreateTopics error was taken as a refusal: a NOT_CONTROLLER
or REQUEST_TIMED_OUT while the controller moved made the rule ignored (its intents' chats went to
human) until the next refresh, and on human's or escalations' topic it stopped the router at start.
Now a retriable error is retried with backoff, within the start-up deadline; a topic still failing
then is left to the first batch sent to its queue, the rule kept. Only a permanent refusal ignores
the rule (or, for human or escalations, stops the router)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from router_fakes import Broker
from tw_testing import scored_chat

from services.router import app
from services.router.config import RouterSettings
from services.router.persist import Recorded, to_send
from services.router.policy import ESCALATIONS, HUMAN
from shared.events import RoutedChat
from shared.kafka.batches import Handler, _is_retryable
from shared.kafka.clients import TopicCreationError
from shared.kafka.sink import Background, SinkClients

CARDS = "cards"  # the table's queue for card_declined
IGNORED = "routing rules ignored"

RETRIABLE = [
    "NOT_CONTROLLER (error code 41)",
    "REQUEST_TIMED_OUT (error code 7)",
    "UNKNOWN_TOPIC_OR_PARTITION (error code 3)",  # aiokafka's retriable=True
    "UNKNOWN (error code 89)",  # THROTTLING_QUOTA_EXCEEDED, which aiokafka does not know
]
PERMANENT = [
    "POLICY_VIOLATION (error code 44)",
    "INVALID_REPLICATION_FACTOR (error code 38)",
    "TOPIC_AUTHORIZATION_FAILED (error code 29)",
    "a refusal without a code",
]


class Router:
    """The router over a fake ledger and ``broker``; ``table`` is the routing table it loads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, broker: Broker, deadline_s: float = 5.0) -> None:
        self.settings = RouterSettings(startup_deadline_s=deadline_s, routes_refresh_s=0.01)
        self.broker = broker
        self.table = {"card_declined": CARDS}
        self.ledger: dict[str, Recorded] = {}
        self.handle: Handler | None = None
        self.clients: SinkClients | None = None
        self.background: Sequence[Background] = ()
        self.offset = 0

        async def load_routes(_: Any) -> dict[str, str]:
            return dict(self.table)

        async def record_decisions(_: Any, decided: Sequence[RoutedChat]) -> list[RoutedChat]:
            for r in decided:
                self.ledger.setdefault(r.id, Recorded(r.queue, r.priority, r.reason, sent=False))
            return to_send(decided, self.ledger)

        async def mark_sent(_: Any, ids: Sequence[str]) -> None:
            for i in ids:
                self.ledger[i] = self.ledger[i]._replace(sent=True)

        async def run_sink(*, make_handler: Any, background: Sequence[Background] = (), **_: Any) -> None:
            self.clients = SinkClients(consumer=None, producer=broker, stop=asyncio.Event())  # type: ignore[arg-type]
            self.background = background
            self.handle = await make_handler(self.clients)

        for name, fake in {
            "load_routes": load_routes,
            "record_decisions": record_decisions,
            "mark_sent": mark_sent,
            "run_sink": run_sink,
            "ensure_topics": broker.ensure_topics,
            "send_all": broker.send_all,
        }.items():
            monkeypatch.setattr(app, name, fake)
        monkeypatch.setattr(app, "CREATE_BACKOFF_S", 0.001, raising=False)
        monkeypatch.setattr(app, "CREATE_MAX_BACKOFF_S", 0.005, raising=False)

    def topic(self, queue: str) -> str:
        return self.settings.topics.queue(queue)

    async def start(self) -> None:
        await app.run(self.settings)

    async def route(self, chat_id: str, intent: str = "card_declined", tries: int = 3) -> list[BaseException]:
        """Handle one batch holding ``chat_id`` as the sink does (a retryable failure tried again)."""
        assert self.handle is not None
        self.offset += 1
        value = scored_chat(chat_id, intent, "conv-1")
        records = [
            ConsumerRecord(self.settings.topics.text_scored, 0, self.offset, 0, 0, b"conv-1", value, None, 6, 9, [])
        ]
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


@pytest.mark.parametrize("error", RETRIABLE)
async def test_a_retriable_error_on_a_table_queue_topic_at_start_is_retried_and_the_rule_kept(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: str
) -> None:
    settings = RouterSettings()
    broker = Broker({settings.topics.text_scored}, fail={settings.topics.queue(CARDS): [error, error]})
    router = Router(monkeypatch, broker)
    with caplog.at_level(logging.WARNING, logger="tonewatch.router"):
        await router.start()
    # was: the rule ignored at once (card_declined's chats to human until the next refresh)
    assert IGNORED not in caplog.text, caplog.text
    assert router.topic(CARDS) in broker.topics
    assert len(broker.creations) == 3, broker.creations  # two failures, retried, then created
    assert broker.creations[1:] == [[router.topic(CARDS)]] * 2  # only the failed topic is tried again
    assert "waiting to create queue topics" in caplog.text and error in caplog.text
    assert await router.route("chat-1") == []
    assert broker.sent == [(router.topic(CARDS), "chat-1")]
    assert router.ledger["chat-1"].queue == CARDS


@pytest.mark.parametrize("queue", [HUMAN, ESCALATIONS])
@pytest.mark.parametrize("error", RETRIABLE)
async def test_a_retriable_error_on_human_or_escalations_at_start_is_retried_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, queue: str, error: str
) -> None:
    settings = RouterSettings()
    broker = Broker({settings.topics.text_scored}, fail={settings.topics.queue(queue): [error]})
    router = Router(monkeypatch, broker)
    await router.start()  # was: TopicCreationError, the router stopped
    assert router.handle is not None
    assert {router.topic(q) for q in (CARDS, HUMAN, ESCALATIONS)} <= broker.topics
    assert await router.route("chat-1", intent="no_rule_for_this") == []
    assert broker.sent == [(router.topic(HUMAN), "chat-1")]


@pytest.mark.parametrize("queue", [CARDS, HUMAN])
async def test_a_retriable_error_lasting_past_the_deadline_keeps_the_rule_and_the_first_batch_creates_the_topic(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, queue: str
) -> None:
    settings = RouterSettings()
    topic = settings.topics.queue(queue)
    broker = Broker({settings.topics.text_scored}, fail={topic: ["NOT_CONTROLLER (error code 41)"] * 1000})
    router = Router(monkeypatch, broker, deadline_s=0.05)
    with caplog.at_level(logging.WARNING, logger="tonewatch.router"):
        await router.start()  # gives up waiting after the deadline, without stopping nor ignoring
    assert IGNORED not in caplog.text, caplog.text
    assert "queue topics not created after" in caplog.text
    assert topic not in broker.topics and 1 < len(broker.creations) < 1000
    broker.fail[topic] = ["NOT_CONTROLLER (error code 41)"]  # the controller settles
    intent = "card_declined" if queue == CARDS else "no_rule_for_this"
    failures = await router.route("chat-1", intent=intent)  # retried once, then created and sent
    assert len(failures) == 1
    assert broker.sent == [(topic, "chat-1")] and broker.letters == []


@pytest.mark.parametrize("error", PERMANENT)
async def test_a_permanent_refusal_of_a_table_queue_topic_still_ignores_the_rule_at_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: str
) -> None:
    settings = RouterSettings()
    broker = Broker({settings.topics.text_scored}, fail={settings.topics.queue(CARDS): [error] * 5})
    router = Router(monkeypatch, broker)
    with caplog.at_level(logging.WARNING, logger="tonewatch.router"):
        await router.start()
    assert len(broker.creations) == 1  # not retried
    assert f"{IGNORED}, their intents' chats go to human: card_declined -> 'cards'" in caplog.text
    assert error in caplog.text
    assert await router.route("chat-1") == []
    assert broker.sent == [(router.topic(HUMAN), "chat-1")]


@pytest.mark.parametrize("queue", [HUMAN, ESCALATIONS])
async def test_a_permanent_refusal_of_human_or_escalations_still_stops_the_router_at_once(
    monkeypatch: pytest.MonkeyPatch, queue: str
) -> None:
    settings = RouterSettings()
    # the table's queue times out meanwhile: no waiting for it
    broker = Broker(
        {settings.topics.text_scored},
        fail={
            settings.topics.queue(queue): ["POLICY_VIOLATION (error code 44)"] * 5,
            settings.topics.queue(CARDS): ["REQUEST_TIMED_OUT (error code 7)"] * 5,
        },
    )
    router = Router(monkeypatch, broker)
    with pytest.raises(TopicCreationError, match="POLICY_VIOLATION"):
        await router.start()
    assert len(broker.creations) == 1


async def test_a_retriable_error_at_a_refresh_keeps_the_new_rule(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A rule added to the table while the controller moves: its chats go to its queue, not to human."""
    settings = RouterSettings()
    fraud = settings.topics.queue("fraud_desk")
    broker = Broker({settings.topics.text_scored}, fail={fraud: ["NOT_CONTROLLER (error code 41)"] * 2})
    router = Router(monkeypatch, broker)
    await router.start()
    assert router.clients is not None
    router.table["unrecognized_charge"] = "fraud_desk"
    [refresh] = [job for job in router.background if job.__name__ == "refresh"]
    with caplog.at_level(logging.WARNING, logger="tonewatch.router"):
        task = asyncio.create_task(refresh(router.clients))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if fraud in broker.topics:
                break
        await asyncio.sleep(0.05)  # the refreshed table is in use
        router.clients.stop.set()
        await task
    assert IGNORED not in caplog.text, caplog.text  # was: unrecognized_charge -> 'fraud_desk' ignored
    assert await router.route("chat-1", intent="unrecognized_charge") == []
    assert broker.sent == [(fraud, "chat-1")]


@pytest.mark.parametrize("queue", [CARDS, HUMAN])
async def test_a_stop_during_the_retry_at_start_ends_the_waiting_at_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, queue: str
) -> None:
    """SIGTERM while the controller keeps failing CreateTopics: the router stops now, not after the
    start-up deadline (60 s by default, past a 10 s docker grace period: SIGKILL)."""
    settings = RouterSettings()
    topic = settings.topics.queue(queue)
    broker = Broker({settings.topics.text_scored}, fail={topic: ["NOT_CONTROLLER (error code 41)"] * 1000})
    router = Router(monkeypatch, broker, deadline_s=60.0)
    monkeypatch.setattr(app, "CREATE_BACKOFF_S", 30.0)
    monkeypatch.setattr(app, "CREATE_MAX_BACKOFF_S", 30.0)
    create = broker.ensure_topics

    async def ensure_topics(settings: Any, topics: list[str], **kw: Any) -> None:
        assert router.clients is not None
        asyncio.get_running_loop().call_later(0.01, router.clients.stop.set)  # during the backoff
        await create(settings, topics, **kw)

    monkeypatch.setattr(app, "ensure_topics", ensure_topics)
    with caplog.at_level(logging.WARNING, logger="tonewatch.router"):
        # was: asleep 30 s, then retried, until the deadline
        await asyncio.wait_for(router.start(), timeout=2.0)
    assert len(broker.creations) == 1, broker.creations  # not retried once stopping
    assert "stopping: queue topics not created" in caplog.text
    assert IGNORED not in caplog.text, caplog.text  # the rule kept, as at the deadline
    assert router.handle is not None and topic not in broker.topics


async def test_a_stop_during_the_retry_at_a_refresh_ends_it_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = RouterSettings()
    fraud = settings.topics.queue("fraud_desk")
    broker = Broker({settings.topics.text_scored}, fail={fraud: ["NOT_CONTROLLER (error code 41)"] * 1000})
    router = Router(monkeypatch, broker, deadline_s=60.0)
    await router.start()
    assert router.clients is not None
    monkeypatch.setattr(app, "CREATE_BACKOFF_S", 30.0)
    monkeypatch.setattr(app, "CREATE_MAX_BACKOFF_S", 30.0)
    router.table["unrecognized_charge"] = "fraud_desk"
    [refresh] = [job for job in router.background if job.__name__ == "refresh"]
    task = asyncio.create_task(refresh(router.clients))
    for _ in range(500):
        await asyncio.sleep(0.01)
        if [fraud] in broker.creations:
            break
    router.clients.stop.set()  # during the 30 s backoff
    await asyncio.wait_for(task, timeout=2.0)  # was: the refresh went on retrying to the deadline
    assert broker.creations.count([fraud]) == 1, broker.creations
