"""A consume loop for sinks: batches bounded by size and time, the effect made
durable by the handler, offsets committed last.

Infrastructure failures (the handler raises :class:`RetryableError` or an
``OSError``) pause the assigned partitions and retry the same batch with backoff,
while still polling so the consumer keeps its group membership: memory stays
bounded and nothing is dead-lettered for a database or cache outage.

A batch the database refuses for the content of a record (SQLSTATE class 22, data
exception, or 23, integrity violation) is not an outage: no retry can succeed. With a
``dead_letter`` hook the batch is handled in halves, recursively, until each refused
record stands alone; it is dead-lettered and every other record handled once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from shared.faults import unreachable
from shared.redact import redact

log = logging.getLogger(__name__)

Records = Sequence[ConsumerRecord[bytes, bytes]]
Handler = Callable[[Records], Awaitable[None]]
DeadLetterHook = Callable[[ConsumerRecord[bytes, bytes], str, str], Awaitable[None]]
"""Dead-letters one record with an error class and a reason (and counts it, in the
metric and the sink's ratio guard, which may raise :class:`StopAfterBatch`)."""

STORE_ERROR_CLASS = "store"
"""The error class of a record the database refused for its content."""
POISON_SQLSTATE_CLASSES = frozenset({"22", "23"})
"""Data exception and integrity constraint violation: the record, not the database."""
REASON_CHARS = 300


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
    if is_poison(exc):
        return False
    # Any other SQLAlchemy / asyncpg / redis error, without importing them here.
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"OperationalError", "InterfaceError", "DBAPIError", "RedisError"})


def _driver_errors(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: SQLAlchemy's ``orig`` (the dialect's adapted error), and
    causes (asyncpg's own error, under the adapted one)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in chain) and len(chain) < 8:
        chain.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return chain


def _with_sqlstate(exc: BaseException) -> BaseException | None:
    """The innermost error of the chain that carries a SQLSTATE (asyncpg's, as sent)."""
    found = [e for e in _driver_errors(exc) if _state_of(e) is not None]
    return found[-1] if found else None


def _state_of(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) and len(state) == 5 else None


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, however wrapped; None for any other error."""
    inner = _with_sqlstate(exc)
    return None if inner is None else _state_of(inner)


def is_poison(exc: BaseException) -> bool:
    """Whether the database refused the data itself (SQLSTATE class 22 or 23): retrying
    the same records can never succeed. Transient classes (08 connection, 40 serialization
    or deadlock, 53 resources, 55P03 lock, 57 operator, 58 system) are not."""
    state = sqlstate(exc)
    return state is not None and state[:2] in POISON_SQLSTATE_CLASSES


# asyncpg's message for an argument it cannot encode quotes the value: leave it out.
_ARGUMENT = re.compile(r"^(invalid input for query argument \$\d+): .*?( \([^()]*\))?$", re.DOTALL)


def store_reason(exc: BaseException) -> str:
    """A dead letter's reason for a record the database refused: the SQLSTATE and the
    database's message, redacted and short (never the statement or its parameters)."""
    inner = _with_sqlstate(exc) or exc
    message = getattr(inner, "message", None)  # asyncpg's, as the server sent it
    if not isinstance(message, str) or not message:
        message = str(inner.args[0]) if inner.args else type(inner).__name__
        message = _ARGUMENT.sub(r"\1\2", message)
    message = redact(message.splitlines()[0] if message.strip() else type(inner).__name__)
    reason = f"the database refused the record: SQLSTATE {_state_of(inner) or '?'}: {message}"
    return reason[:REASON_CHARS]


async def run_batches(
    consumer: AIOKafkaConsumer,
    handler: Handler,
    *,
    policy: BatchPolicy,
    stop: asyncio.Event,
    on_retry: Callable[[BaseException], None] | None = None,
    dead_letter: DeadLetterHook | None = None,
) -> None:
    """Consume until ``stop`` is set. The consumer must be started. Without ``dead_letter``
    a batch the database refuses for a record's content is retried as an outage is."""
    while not stop.is_set():
        polled = await consumer.getmany(timeout_ms=policy.max_wait_ms, max_records=policy.max_batch)
        records = [r for tp in sorted(polled, key=lambda t: (t.topic, t.partition)) for r in polled[tp]]
        if not records:
            continue
        try:
            outcome = await _handle_until_done(consumer, handler, records, policy, stop, on_retry, dead_letter)
        except _Halted as halted:
            raise halted.cause from None  # uncommitted: the rest of the batch was not handled
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


class _Halted(Exception):
    """The dead-letter guard tripped while a halved batch still had parts to handle: stop
    with its error, leaving the batch uncommitted (the parts handled are durable, and the
    sinks' ledgers make handling them again harmless)."""

    def __init__(self, cause: StopAfterBatch) -> None:
        super().__init__(str(cause))
        self.cause = cause


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
    dead_letter: DeadLetterHook | None,
) -> _Outcome:
    """DONE once every record was handled, or dead-lettered as refused by the database;
    STOPPED when stopped while retrying; TAKEN when a rebalance while retrying took
    partitions of the batch (it is then dropped, uncommitted). A :class:`StopAfterBatch`
    from the handler or the hook is raised once the whole batch is done; raised while
    parts of a halved batch are still to go, it stops there (:class:`_Halted`): a refusal
    that hits every record (a constraint an operator added) must not drain the topic into
    the DLQ, one batch per restart."""
    backoff = policy.initial_backoff_s
    ours = {TopicPartition(r.topic, r.partition) for r in records}
    paused = False
    # Parts not handled yet, in offset order. A part that succeeded is never handled again.
    pending: list[Records] = [records]
    stopping: StopAfterBatch | None = None
    try:
        while pending:
            if stopping is not None:
                raise _Halted(stopping)
            part = pending.pop(0)
            try:
                await handler(part)
            except StopAfterBatch as exc:
                stopping = stopping or exc  # the part's effect is complete
            except Exception as exc:
                if dead_letter is not None and is_poison(exc):
                    try:
                        pending[:0] = await _split_or_dead_letter(part, exc, dead_letter)
                    except StopAfterBatch as tripped:
                        stopping = stopping or tripped  # the record was dead-lettered
                    continue
                if not (_is_retryable(exc) or is_poison(exc)):  # without a hook, refused waits as before
                    raise
                pending.insert(0, part)
                _log_retry(part, exc, backoff)
                if on_retry is not None:
                    on_retry(exc)
                paused = True
                outcome = await _wait_paused(consumer, backoff, stop, ours)
                if outcome is not None:
                    return outcome
                backoff = min(backoff * 2, policy.max_backoff_s)
        if stopping is not None:
            raise stopping
        return _Outcome.DONE
    finally:
        if paused:
            consumer.resume(*consumer.assignment())


async def _split_or_dead_letter(part: Records, exc: BaseException, dead_letter: DeadLetterHook) -> list[Records]:
    """The halves of a part the database refused, to handle each on its own; a single
    record is dead-lettered instead (no halves)."""
    first = part[0]
    if len(part) == 1:
        await dead_letter(first, STORE_ERROR_CLASS, store_reason(exc))
        return []
    log.warning(
        "batch of %d from %s[%d]@%d refused by the database (SQLSTATE %s); handling it in halves",
        len(part),
        first.topic,
        first.partition,
        first.offset,
        sqlstate(exc),
    )
    middle = len(part) // 2
    return [part[:middle], part[middle:]]


def _log_retry(part: Records, exc: BaseException, backoff: float) -> None:
    first = part[0]
    log.warning(
        "batch of %d from %s[%d]@%d failed (%s: %s); pausing and retrying in %.1fs",
        len(part),
        first.topic,
        first.partition,
        first.offset,
        type(exc).__name__,
        str(exc)[:200],
        backoff,
    )


async def _wait_paused(
    consumer: AIOKafkaConsumer, backoff: float, stop: asyncio.Event, ours: set[TopicPartition]
) -> _Outcome | None:
    """Wait out a backoff with the assignment paused; None to retry, else how it ended."""
    # Pause what is assigned now, every round: a rebalance while we wait hands
    # out a new assignment, unpaused, that would fetch again.
    consumer.pause(*consumer.assignment())
    # Poll to keep group membership alive. A rebalance during the poll can
    # still return records: put them back rather than drop them.
    _put_back(consumer, await consumer.getmany(timeout_ms=int(backoff * 1000)))
    if stop.is_set():
        return _Outcome.STOPPED
    if not ours <= set(consumer.assignment()):
        log.warning("a rebalance took partitions of the failing batch; leaving it to their new owner")
        return _Outcome.TAKEN
    return None


def _put_back(consumer: AIOKafkaConsumer, polled: dict[TopicPartition, list[Any]]) -> None:
    """Seek each partition back to the first record a poll returned, so it is fetched again."""
    for tp, got in polled.items():
        if got:
            consumer.seek(tp, got[0].offset)
