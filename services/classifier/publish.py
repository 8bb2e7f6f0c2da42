"""Stage 4: produce scored events and wait for the broker's acks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.classifier.score import key_of
from shared.events import ScoredEvent
from shared.kafka.produce import send_all

log = logging.getLogger(__name__)


async def publish(
    producer: AIOKafkaProducer,
    topic: str,
    events: Sequence[ScoredEvent],
    *,
    max_backoff_s: float = 10.0,
) -> None:
    """Send every event and wait until all are acknowledged; retry on broker errors.

    A retry may send an event twice: downstream sinks count each id once."""
    backoff = 0.2
    while True:
        try:
            await send_all(producer, ((topic, key_of(e), e.to_bytes()) for e in events))
            return
        except KafkaError as exc:
            log.warning("producing %d scored events failed (%s); retrying in %.1fs", len(events), exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)
