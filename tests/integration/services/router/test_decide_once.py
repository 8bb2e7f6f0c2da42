"""The router decides a chat's queue once and records it before sending: a chat whose
send was cut short is sent again to the recorded queue, however the routing table or the
thresholds changed meanwhile, and a batch whose ledger write fails sends nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from services_proc import log_tail, running, start_service
from sink_outage import produce
from sqlalchemy import func, select, text, update
from tw_testing import scored_chat, topic_records, wait_until

from services.router.config import RouterSettings
from services.router.policy import DEFAULT_ROUTES, HUMAN
from shared.db.models import RoutedEvent, RoutingMinute, RoutingRule
from shared.events import RoutedChat
from shared.kafka.clients import ensure_topics

pytestmark = pytest.mark.integration
INTENT = "card_declined"


@pytest.mark.parametrize("change", ["routing table", "threshold"])
async def test_a_chat_sent_before_a_crash_goes_again_to_its_recorded_queue_only(
    change: str, service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    """The router puts a chat on ``first`` and dies before marking it sent; meanwhile the
    table sends its intent elsewhere (or the confidence threshold rises above its score).
    Restarted, it sent the redelivered chat to the new queue too: one chat in two queues."""
    settings: RouterSettings = service_settings(RouterSettings)
    topics = settings.topics
    first, second = f"first{unique}", f"second{unique}"
    after = second if change == "routing table" else HUMAN
    chat_id, marker = f"{unique}-ok-0", f"{unique}-ok-1"
    key = f"conv-{unique}".encode()
    await ensure_topics(settings.kafka, [topics.text_scored, *(topics.queue(q) for q in (first, second, HUMAN))])
    env = {"TW_ROUTER_GROUP_ID": f"rt-{unique}"}
    await _route(sessions, first)
    try:
        await produce(settings, topics.text_scored, [scored_chat(chat_id, INTENT, key.decode())], key=key)
        crashed = start_service(
            "router", settings, tmp_path, "-crashed", TW_FAILPOINTS="after_queue_produce:1:raise", **env
        )
        assert await asyncio.to_thread(crashed.wait, 120) != 0, log_tail(tmp_path, "router-crashed")
        assert "fail point after_queue_produce" in log_tail(tmp_path, "router-crashed", 20_000)
        assert await _ids(settings, topics.queue(first)) == [chat_id]

        if change == "routing table":
            await _route(sessions, second)
        else:
            env["TW_ROUTER_CONFIDENCE_THRESHOLD"] = "0.99"  # 0.95 is now low confidence: human
        # behind the chat on its partition: once the marker is on its queue, the chat was handled
        await produce(settings, topics.text_scored, [scored_chat(marker, INTENT, key.decode())], key=key)
        with running("router", settings, tmp_path, **env):
            await wait_until(lambda: _has(settings, topics.queue(after), marker), timeout=90)
    finally:
        await _route(sessions, DEFAULT_ROUTES[INTENT])

    assert await _ids(settings, topics.queue(after)) == [marker]
    copies = [RoutedChat.model_validate_json(r.value) for r in await topic_records(settings, topics.queue(first))]
    assert {c.id for c in copies} == {chat_id}
    assert {(c.queue, c.priority, c.reason) for c in copies} == {(first, False, f"intent {INTENT} 0.95")}
    async with sessions() as s:
        row = (await s.execute(select(RoutedEvent).where(RoutedEvent.id == chat_id))).scalar_one()
        counted = await s.execute(
            select(func.coalesce(func.sum(RoutingMinute.count), 0)).where(RoutingMinute.queue == first)
        )
        assert (row.queue, row.reason, row.sent_at is not None) == (first, f"intent {INTENT} 0.95", True)
        assert counted.scalar() == 1


async def test_a_batch_retried_through_a_failing_ledger_write_sends_nothing_until_it_succeeds(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    """PostgreSQL refuses the ledger write (a trigger raises for this test's ids) while
    the ledger read works: the batch is retried. Before, every retry sent the chat to
    its queue again before the write failed."""
    settings: RouterSettings = service_settings(RouterSettings)
    topics = settings.topics
    queue = topics.queue(DEFAULT_ROUTES[INTENT])
    await ensure_topics(settings.kafka, [topics.text_scored, queue])
    chat_id = f"{unique}-ok-0"
    refuse = f"refuse_{unique}"
    async with sessions.begin() as s:
        await s.execute(
            text(
                f"CREATE FUNCTION {refuse}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.id LIKE '{unique}-%' THEN RAISE EXCEPTION 'ledger write refused'; END IF; "
                "RETURN NEW; END $$"
            )
        )
        await s.execute(
            text(f"CREATE TRIGGER {refuse} BEFORE INSERT ON routed_events FOR EACH ROW EXECUTE FUNCTION {refuse}()")
        )
    try:
        with running("router", settings, tmp_path, TW_ROUTER_GROUP_ID=f"rt-{unique}"):
            await produce(settings, topics.text_scored, [scored_chat(chat_id, INTENT, f"conv-{unique}")])
            await wait_until(lambda: _retries(tmp_path) >= 3, timeout=90)
            assert await _ids(settings, queue) == []
            async with sessions.begin() as s:
                await s.execute(text(f"DROP TRIGGER {refuse} ON routed_events"))
            await wait_until(lambda: _sent(sessions, chat_id), timeout=60)
    finally:
        async with sessions.begin() as s:
            await s.execute(text(f"DROP TRIGGER IF EXISTS {refuse} ON routed_events"))
            await s.execute(text(f"DROP FUNCTION {refuse}()"))
    assert await _ids(settings, queue) == [chat_id]


async def _route(sessions: Any, queue: str) -> None:
    async with sessions.begin() as s:
        await s.execute(update(RoutingRule).where(RoutingRule.intent == INTENT).values(queue=queue))


async def _ids(settings: RouterSettings, topic: str) -> list[str]:
    return [RoutedChat.model_validate_json(r.value).id for r in await topic_records(settings, topic) if r.value]


async def _has(settings: RouterSettings, topic: str, chat_id: str) -> bool:
    return chat_id in await _ids(settings, topic)


async def _sent(sessions: Any, chat_id: str) -> bool:
    async with sessions() as s:
        q = select(RoutedEvent.sent_at).where(RoutedEvent.id == chat_id)
        return (await s.execute(q)).scalar() is not None


def _retries(log_dir: Path) -> int:
    return log_tail(log_dir, "router", 1_000_000).count("pausing and retrying")
