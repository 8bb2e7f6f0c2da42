"""Through the running router: an angry chat the sentiment model read as neutral lands in
escalations with priority, and a chat with no words in human, whatever the models made of
them. Before, the angry chat went to retention without priority and the emoji-only one
to self_service (its "[CLS] [UNK] [SEP]" scored as a greeting)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from services_proc import running
from sink_outage import produce
from sqlalchemy import func, select
from tw_testing import topic_records, wait_until

from services.router.config import RouterSettings
from services.router.policy import DEFAULT_ROUTES, ESCALATIONS, HUMAN, QUEUES
from shared.db.models import RoutedEvent
from shared.events import RoutedChat, Score, ScoredEvent
from shared.kafka.clients import ensure_topics

pytestmark = pytest.mark.integration


def chat(mid: str, conversation: str, text: str, label: str, negative: float) -> bytes:
    """A chat on text.scored as the classifier scored it: a confident intent, and the
    sentiment model's (low) negative probability."""
    now = datetime.now(UTC)
    intent = Score(label=label, confidence=0.95, probs={label: 0.95}, model="m", version="v1")
    probs = {"negative": negative, "neutral": 1 - negative, "positive": 0.0}
    sentiment = Score(label="neutral", confidence=1 - negative, probs=probs, model="m", version="v1")
    return ScoredEvent(
        id=mid,
        stream="chat",
        event_time=now,
        received_time=now,
        text=text,
        sentiment=sentiment,
        intent=intent,
        conversation_id=conversation,
    ).to_bytes()


async def test_an_angry_chat_goes_to_escalations_with_priority_and_one_with_no_words_to_human(
    service_settings: Callable[..., Any], sessions: Any, tmp_path: Path, unique: str
) -> None:
    settings: RouterSettings = service_settings(RouterSettings)
    topics = settings.topics
    await ensure_topics(settings.kafka, [topics.text_scored, *(topics.queue(q) for q in QUEUES)])
    conv = f"conv-{unique}"
    angry, emoji, angry_emoji, calm = (f"{unique}-ok-{i}" for i in range(4))
    values = [
        chat(angry, conv, "I want to close my account, you are useless and I am furious", "close_account", 0.12),
        chat(emoji, conv, "👍👍", "greeting", 0.05),
        chat(angry_emoji, conv, "😡😡😡", "greeting", 0.05),
        chat(calm, conv, "my card was stolen yesterday", "card_lost_stolen", 0.6),
    ]
    with running("router", settings, tmp_path, TW_ROUTER_GROUP_ID=f"rt-{unique}"):
        await produce(settings, topics.text_scored, values, key=conv.encode())
        await wait_until(lambda: _sent(sessions, unique, 4), timeout=60)

    escalated = await _queue(settings, ESCALATIONS)
    assert {c.id: (c.priority, c.reason) for c in escalated} == {
        angry: (True, "angry: 'useless', 'furious'; intent close_account"),
        angry_emoji: (True, "angry: '😡'; no words to classify"),
    }
    assert [(c.id, c.priority, c.reason) for c in await _queue(settings, HUMAN)] == [
        (emoji, False, "no words to classify")
    ]
    assert [(c.id, c.priority) for c in await _queue(settings, DEFAULT_ROUTES["card_lost_stolen"])] == [(calm, False)]
    for queue in (DEFAULT_ROUTES["close_account"], DEFAULT_ROUTES["greeting"]):
        assert await _queue(settings, queue) == []
    async with sessions() as s:
        rows = (await s.execute(select(RoutedEvent).where(RoutedEvent.id.like(f"{unique}-ok-%")))).scalars().all()
    assert {r.id: (r.queue, r.priority) for r in rows} == {
        angry: (ESCALATIONS, True),
        emoji: (HUMAN, False),
        angry_emoji: (ESCALATIONS, True),
        calm: (DEFAULT_ROUTES["card_lost_stolen"], False),
    }


async def _queue(settings: RouterSettings, queue: str) -> list[RoutedChat]:
    records = await topic_records(settings, settings.topics.queue(queue))
    return [RoutedChat.model_validate_json(r.value) for r in records if r.value]


async def _sent(sessions: Any, unique: str, n: int) -> bool:
    async with sessions() as s:
        q = (
            select(func.count())
            .select_from(RoutedEvent)
            .where(RoutedEvent.id.like(f"{unique}-ok-%"), RoutedEvent.sent_at.is_not(None))
        )
        return int((await s.execute(q)).scalar() or 0) >= n
