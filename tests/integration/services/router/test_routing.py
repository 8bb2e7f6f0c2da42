"""Chats flow raw -> classifier -> router -> chat.queue.<queue>, keyed by
conversation, counted once per message in PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from services_proc import running
from sink_outage import dead_letter_values, one_batch_during_postgres_outage, produce, stops_on_a_burst_of_bad_records
from sqlalchemy import func, select, update
from tw_testing import scored_chat, wait_until

from services.router.config import RouterSettings
from services.router.policy import DEFAULT_ROUTES, HUMAN, QUEUES
from shared.db.models import RoutedEvent, RoutingMinute, RoutingRule
from shared.events import RoutedChat
from shared.kafka.clients import ensure_topics, make_consumer, make_producer

pytestmark = pytest.mark.integration


async def test_chats_reach_queues_in_conversation_order(
    service_settings: Callable[..., Any], tiny_models: Path, sessions: Any, tmp_path: Path, unique: str
) -> None:
    settings: RouterSettings = service_settings(RouterSettings)
    topics = settings.topics
    queue_topics = [topics.queue(q) for q in QUEUES]
    await ensure_topics(settings.kafka, [topics.chat_raw, topics.news_raw, *queue_topics])
    chats = [
        (f"conv-{c}", f"{unique}-{c}-{m}", f"message {m} from {c}: my card was declined again")
        for m in range(4)
        for c in range(10)
    ]
    producer = make_producer(settings.kafka, client_id="test")
    await producer.start()
    now = datetime.now(UTC).isoformat()
    try:
        for conv, mid, text in chats:
            await producer.send_and_wait(
                topics.chat_raw,
                json.dumps({"id": mid, "conversation_id": conv, "text": text, "event_time": now}).encode(),
                key=conv.encode(),
            )
    finally:
        await producer.stop()
    consumer = make_consumer(settings.kafka, *queue_topics, group_id=f"q-{unique}", client_id="test")
    await consumer.start()
    received: list[RoutedChat] = []
    env = {"TW_MODELS_DIR": str(tiny_models), "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}"}
    try:
        with (
            running("classifier", settings, tmp_path, **env),
            running("router", settings, tmp_path, TW_ROUTER_GROUP_ID=f"rt-{unique}"),
        ):
            async with asyncio.timeout(120):
                while len(received) < len(chats):
                    batch = await consumer.getmany(timeout_ms=500)
                    for records in batch.values():
                        for r in records:
                            assert r.key is not None and r.value is not None
                            msg = RoutedChat.model_validate_json(r.value)
                            assert r.key.decode() == msg.conversation_id
                            assert r.topic == topics.queue(msg.queue)
                            received.append(msg)

            async def counted() -> int:
                async with sessions() as s:
                    q = select(func.coalesce(func.sum(RoutingMinute.count), 0))
                    return int((await s.execute(q)).scalar() or 0)

            await wait_until(lambda: _ge(counted, len(chats)), timeout=30)
    finally:
        await consumer.stop()
    assert sorted(m.id for m in received) == sorted(mid for _, mid, _ in chats)
    for conv in {c for c, _, _ in chats}:  # per conversation, order is kept
        seq = [m.id for m in received if m.conversation_id == conv]
        assert seq == sorted(seq, key=lambda s: int(s.rsplit("-", 1)[1]))
    assert all(m.reason for m in received)


async def _ge(fn: Callable[[], Any], n: int) -> bool:
    return bool(await fn() >= n)


async def test_router_creates_every_queue_topic_before_routing(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    """Queue topics exist before the first message is routed (a produce to a missing topic
    waits on auto-creation and logs errors), including a queue added to the table later."""
    settings: RouterSettings = service_settings(RouterSettings)
    new_queue = f"fraud{unique}"
    wanted = {settings.topics.queue(q) for q in QUEUES}

    async def missing(names: set[str]) -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
        await admin.start()
        try:
            return names - set(await admin.list_topics())
        finally:
            await admin.close()

    assert await missing(wanted) == wanted  # a fresh topic prefix: none yet
    try:
        with running("router", settings, tmp_path, TW_ROUTER_GROUP_ID=f"rt-{unique}", TW_ROUTER_ROUTES_REFRESH_S="1"):
            await wait_until(lambda: _none(missing(wanted)), timeout=60)
            async with sessions.begin() as s:
                await s.execute(
                    update(RoutingRule).where(RoutingRule.intent == "unrecognized_charge").values(queue=new_queue)
                )
            await wait_until(lambda: _none(missing({settings.topics.queue(new_queue)})), timeout=30)
    finally:
        async with sessions.begin() as s:
            await s.execute(
                update(RoutingRule)
                .where(RoutingRule.intent == "unrecognized_charge")
                .values(queue=DEFAULT_ROUTES["unrecognized_charge"])
            )


async def _none(pending: Any) -> bool:
    return not await pending


async def test_bad_records_in_a_batch_retried_through_an_outage_are_dead_lettered_once(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    """PostgreSQL is down when three bad records and four chats arrive in one batch: the
    batch is retried until PostgreSQL is back. Each bad record is dead-lettered once.
    Before, every retry dead-lettered them again (they were written before the ledger)."""
    settings: RouterSettings = service_settings(RouterSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.text_scored, *(topics.queue(q) for q in QUEUES)])
    chats = [scored_chat(f"{unique}-ok-{i}", "card_declined", f"conv-{unique}") for i in range(4)]
    bad = [b"not json %d" % i for i in range(3)]
    env = {"TW_ROUTER_GROUP_ID": f"rt-{unique}", "TW_ROUTER_MAX_WAIT_MS": "3000"}  # one batch of 7
    values = [bad[0], *chats[:2], bad[1], *chats[2:], bad[2]]
    with running("router", settings, tmp_path, **env):
        await one_batch_during_postgres_outage(settings, "router", tmp_path, topics.text_scored, values)
        await sessions.kw["bind"].dispose()  # drop connections that died with the server
        await wait_until(lambda: _routed(sessions, unique, 4), timeout=60)
        letters = await dead_letter_values(settings, topics.text_scored, len(bad))
    assert sorted(letters) == sorted(bad), letters
    # the chats reached their queue once: the batch was retried four times or more, and
    # each retry sent them again before the ledger write failed
    queued = await _queue_ids(settings, topics.queue(DEFAULT_ROUTES["card_declined"]))
    assert sorted(queued) == [f"{unique}-ok-{i}" for i in range(4)], queued


async def _queue_ids(settings: RouterSettings, topic: str) -> list[str]:
    """Ids of every message on a queue topic, from its beginning to its end now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    tps = [TopicPartition(topic, p["partition"]) for d in described for p in d.get("partitions", [])]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        ids: list[str] = []
        async with asyncio.timeout(30):
            while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    ids += [RoutedChat.model_validate_json(r.value).id for r in records if r.value is not None]
        return ids
    finally:
        await consumer.stop()


async def _routed(sessions: Any, unique: str, n: int) -> bool:
    async with sessions() as s:
        q = select(func.count()).select_from(RoutedEvent).where(RoutedEvent.id.like(f"{unique}-ok-%"))
        return int((await s.execute(q)).scalar() or 0) >= n


async def test_a_burst_of_bad_records_stops_the_router_and_each_is_dead_lettered_once(
    service_settings: Callable[..., Any], tmp_path: Path, unique: str
) -> None:
    """120 unreadable records on text.scored (a producer on another contract version, say):
    more than TW_ROUTER_DLQ_MAX_RATIO of recent records fail, so the router stops with code 1
    instead of dead-lettering every chat for ever. Restarted with the ratio raised, it goes
    on; each bad record is in the DLQ once."""
    settings: RouterSettings = service_settings(RouterSettings)
    topic = settings.topics.text_scored
    await ensure_topics(settings.kafka, [topic, *(settings.topics.queue(q) for q in QUEUES)])
    bad = [b'{"schema_version": 2, "n": %d}' % i for i in range(120)]
    env = {"TW_ROUTER_GROUP_ID": f"rt-{unique}"}
    await stops_on_a_burst_of_bad_records("router", settings, tmp_path, topic, bad, **env)
    with running("router", settings, tmp_path, **env, TW_ROUTER_DLQ_MAX_RATIO="1"):
        letters = await dead_letter_values(settings, topic, len(bad))
    assert sorted(letters) == sorted(bad)


async def test_a_copy_of_a_routed_chat_scored_differently_is_not_sent_to_a_second_queue(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    """The classifier re-produces after a crash; meanwhile a new intent model scores the
    copy differently. The router sent the copy before checking its ledger, so one chat
    sat in two work queues (cards and access)."""
    settings: RouterSettings = service_settings(RouterSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.text_scored, *(topics.queue(q) for q in QUEUES)])

    def chat(mid: str, label: str) -> bytes:
        return scored_chat(mid, label, f"conv-{unique}")

    first, copy, marker = f"{unique}-ok-0", f"{unique}-ok-0", f"{unique}-ok-1"
    with running("router", settings, tmp_path, TW_ROUTER_GROUP_ID=f"rt-{unique}"):
        await produce(settings, topics.text_scored, [chat(first, "card_declined")], key=f"conv-{unique}".encode())
        await wait_until(lambda: _routed(sessions, unique, 1), timeout=60)
        await produce(
            settings,
            topics.text_scored,
            [chat(copy, "login_problem"), chat(marker, "card_declined")],
            key=f"conv-{unique}".encode(),
        )
        await wait_until(lambda: _routed(sessions, unique, 2), timeout=60)
    assert sorted(await _queue_ids(settings, topics.queue(DEFAULT_ROUTES["card_declined"]))) == [first, marker]
    assert await _queue_ids(settings, topics.queue(DEFAULT_ROUTES["login_problem"])) == []


async def test_a_chat_with_nul_in_its_intent_is_dead_lettered_and_the_next_routed(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    """NUL cannot be stored (PostgreSQL refuses it in text and jsonb): the scored chat is
    dead-lettered at decode with the reason. Before, it was routed (to human, an unknown
    intent) with the NUL in its intent and reason, for queue consumers to choke on."""
    settings: RouterSettings = service_settings(RouterSettings)
    topic = settings.topics.text_scored
    await ensure_topics(settings.kafka, [topic, *(settings.topics.queue(q) for q in QUEUES)])
    bad = scored_chat(f"{unique}-bad", "card_declined", f"conv-{unique}").replace(
        b"card_declined", b"card\\u0000declined"
    )
    ok = scored_chat(f"{unique}-ok-0", "card_declined", f"conv-{unique}")
    with running("router", settings, tmp_path, TW_ROUTER_GROUP_ID=f"rt-{unique}"):
        await produce(settings, topic, [bad, ok], key=f"conv-{unique}".encode())
        await wait_until(lambda: _routed(sessions, unique, 1), timeout=60)
        letters = await dead_letter_values(settings, topic, 1)
    assert letters == [bad]
    assert await _queue_ids(settings, settings.topics.queue(DEFAULT_ROUTES["card_declined"])) == [f"{unique}-ok-0"]
    assert await _queue_ids(settings, settings.topics.queue(HUMAN)) == []
