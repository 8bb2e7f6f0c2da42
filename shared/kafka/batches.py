"""A consume loop for sinks: batches bounded by size and time, the effect made
durable by the handler, offsets committed last.

Infrastructure failures (the handler raises :class:`RetryableError` or an
``OSError``) pause the assigned partitions and retry the same batch with backoff,
while still polling so the consumer keeps its group membership: memory stays
bounded and nothing is dead-lettered for a database or cache outage.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from shared.faults import unreachable

log = logging.getLogger(__name__)

Records = Sequence[ConsumerRecord[bytes, bytes]]
Handler = Callable[[Records], Awaitable[None]]


class RetryableError(RuntimeError):
    """An infrastructure fault: retry the same batch later."""


class StopAfterBatch(RuntimeError):
    """Raised by a handler whose effect on the batch is complete (stored, dead-lettered)
    but which must stop the service: the batch is committed first, so a restart does
    not handle it again, then the error propagates."""


@dataclass(frozen=True)
class BatchPolicy:
    max_batch: int = 500
    max_wait_ms: int = 200
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 10.0


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, RetryableError | asyncio.TimeoutError | KafkaError) or unreachable(exc):
        return True
    # Any other SQLAlchemy / asyncpg / redis error, without importing them here.
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"OperationalError", "InterfaceError", "DBAPIError", "RedisError"})


async def run_batches(
    consumer: AIOKafkaConsumer,
    handler: Handler,
    *,
    policy: BatchPolicy,
    stop: asyncio.Event,
    on_retry: Callable[[BaseException], None] | None = None,
) -> None:
    """Consume until ``stop`` is set. The consumer must be started."""
    while not stop.is_set():
        polled = await consumer.getmany(timeout_ms=policy.max_wait_ms, max_records=policy.max_batch)
        records = [r for tp in sorted(polled, key=lambda t: (t.topic, t.partition)) for r in polled[tp]]
        if not records:
            continue
        try:
            outcome = await _handle_until_done(consumer, handler, records, policy, stop, on_retry)
        except StopAfterBatch:
            await _commit(consumer, records)
            raise
        if outcome is _Outcome.STOPPED:
            return  # stopped while retrying: leave the offsets uncommitted
        if outcome is _Outcome.TAKEN:
            continue  # a rebalance took partitions of the batch: their new owner re-reads them
        await _commit(consumer, records)


async def _commit(consumer: AIOKafkaConsumer, records: Records) -> None:
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError) as exc:
        # A rebalance took the partitions away; the new owner re-reads, and the
        # idempotent sinks make that harmless.
        log.warning("offset commit failed after rebalance (%s); records will be re-read", exc)


class _Outcome(enum.Enum):
    DONE = "done"
    STOPPED = "stopped"
    TAKEN = "taken"


async def _handle_until_done(
    consumer: AIOKafkaConsumer,
    handler: Handler,
    records: Records,
    policy: BatchPolicy,
    stop: asyncio.Event,
    on_retry: Callable[[BaseException], None] | None,
) -> _Outcome:
    """DONE once the handler succeeded; STOPPED when stopped while retrying; TAKEN when a
    rebalance while retrying took partitions of the batch (it is then dropped, uncommitted)."""
    backoff = policy.initial_backoff_s
    ours = {TopicPartition(r.topic, r.partition) for r in records}
    paused = False
    try:
        while True:
            try:
                await handler(records)
            except Exception as exc:
                if not _is_retryable(exc):
                    raise
                first = records[0]
                log.warning(
                    "batch of %d from %s[%d]@%d failed (%s: %s); pausing and retrying in %.1fs",
                    len(records),
                    first.topic,
                    first.partition,
                    first.offset,
                    type(exc).__name__,
                    str(exc)[:200],
                    backoff,
                )
                if on_retry is not None:
                    on_retry(exc)
                # Pause what is assigned now, every round: a rebalance while we wait hands
                # out a new assignment, unpaused, that would fetch again.
                consumer.pause(*consumer.assignment())
                paused = True
                # Poll to keep group membership alive. A rebalance during the poll can
                # still return records: put them back rather than drop them.
                _put_back(consumer, await consumer.getmany(timeout_ms=int(backoff * 1000)))
                if stop.is_set():
                    return _Outcome.STOPPED
                if not ours <= set(consumer.assignment()):
                    log.warning("a rebalance took partitions of the failing batch; leaving it to their new owner")
                    return _Outcome.TAKEN
                backoff = min(backoff * 2, policy.max_backoff_s)
            else:
                return _Outcome.DONE
    finally:
        if paused:
            consumer.resume(*consumer.assignment())


def _put_back(consumer: AIOKafkaConsumer, polled: dict[TopicPartition, list[Any]]) -> None:
    """Seek each partition back to the first record a poll returned, so it is fetched again."""
    for tp, got in polled.items():
        if got:
            consumer.seek(tp, got[0].offset)
