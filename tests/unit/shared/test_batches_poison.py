"""A batch the database refuses for a record's content: the error classified by SQLSTATE
(real asyncpg errors, translated as SQLAlchemy's asyncpg dialect does), and the batch
handled in halves until the refused records stand alone, on a fake consumer and handler."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection, AsyncAdapt_asyncpg_dbapi

from shared.kafka.batches import (
    STORE_ERROR_CLASS,
    BatchPolicy,
    RetryableError,
    StopAfterBatch,
    _is_retryable,
    is_poison,
    run_batches,
    sqlstate,
    store_reason,
)

TP = TopicPartition("t", 0)
DBAPI = AsyncAdapt_asyncpg_dbapi(asyncpg)  # type: ignore[no-untyped-call]


def wrapped(error: Exception) -> sa_exc.DBAPIError:
    """``error`` as a session raises it: the dialect's adapted error, caused by asyncpg's,
    inside SQLAlchemy's DBAPIError (which quotes the statement and its parameters)."""
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(DBAPI, error)
    except DBAPI.Error as adapted:
        made = sa_exc.DBAPIError.instance("INSERT INTO t VALUES ($1)", ("secret-value",), adapted, DBAPI.Error)
        assert isinstance(made, sa_exc.DBAPIError)
        return made
    raise AssertionError("not translated")


POISON = [
    asyncpg.exceptions.NumericValueOutOfRangeError("integer out of range"),
    asyncpg.exceptions.InvalidTextRepresentationError('invalid input syntax for type integer: "x"'),
    asyncpg.exceptions.StringDataRightTruncationError("value too long for type character varying(64)"),
    asyncpg.exceptions.DataError(
        "invalid input for query argument $1: 99999999999999999999 (value out of int64 range)"
    ),
    asyncpg.exceptions.CheckViolationError('new row for relation "t" violates check constraint "t_n_check"'),
    asyncpg.exceptions.NotNullViolationError('null value in column "n" violates not-null constraint'),
    asyncpg.exceptions.UniqueViolationError('duplicate key value violates unique constraint "t_pkey"'),
]
TRANSIENT = [
    asyncpg.exceptions.SerializationError("could not serialize access"),
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    asyncpg.exceptions.TooManyConnectionsError("too many clients"),
    asyncpg.exceptions.LockNotAvailableError("could not obtain lock"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.PostgresIOError("could not read block"),
    asyncpg.exceptions.ConnectionFailureError("connection failure"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
]


@pytest.mark.parametrize("error", POISON, ids=lambda e: type(e).__name__)
def test_a_data_or_integrity_error_is_poison_not_retried(error: Exception) -> None:
    """Before: any DBAPIError was retryable, so the partition stalled for ever on it."""
    for exc in (error, wrapped(error)):
        assert sqlstate(exc) == getattr(error, "sqlstate", None)
        assert is_poison(exc) and not _is_retryable(exc)


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_a_transient_database_error_stays_retryable(error: Exception) -> None:
    exc = wrapped(error)
    assert not is_poison(exc) and _is_retryable(exc)


def test_errors_without_a_sqlstate_keep_their_classification() -> None:
    assert not is_poison(TimeoutError()) and _is_retryable(TimeoutError())
    assert _is_retryable(RetryableError("down")) and not is_poison(ValueError("bug"))
    assert not _is_retryable(ValueError("a bug"))
    syntax = wrapped(asyncpg.exceptions.UndefinedTableError('relation "t" does not exist'))
    assert sqlstate(syntax) == "42P01" and not is_poison(syntax) and _is_retryable(syntax)


def test_the_reason_names_the_sqlstate_and_the_message_not_the_statement_or_values() -> None:
    reason = store_reason(wrapped(POISON[0]))
    assert reason == "the database refused the record: SQLSTATE 22003: integer out of range"
    argument = store_reason(wrapped(POISON[3]))
    assert "SQLSTATE 22000" in argument and "(value out of int64 range)" in argument
    assert "99999999999999999999" not in argument and "secret-value" not in argument and "INSERT" not in argument
    mail = asyncpg.exceptions.InvalidTextRepresentationError('invalid input syntax: "jane.doe@example.com"')
    assert "jane.doe@example.com" not in store_reason(mail)
    assert len(store_reason(asyncpg.exceptions.DataError("x" * 5_000))) <= 300


class Rec:
    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset = "t", 0, offset


class Consumer:
    """Hands out ``n`` records in batches of ``max_records``, then nothing."""

    def __init__(self, n: int) -> None:
        self.n, self.pos, self.commits = n, 0, list[dict[TopicPartition, int]]()
        self.paused = False

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def pause(self, *tps: TopicPartition) -> None:
        self.paused = True

    def resume(self, *tps: TopicPartition) -> None:
        self.paused = False

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.pos = offset

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
        await asyncio.sleep(0)
        if self.paused or self.pos >= self.n:
            return {}
        out = [Rec(o) for o in range(self.pos, min(self.n, self.pos + (max_records or 1)))]
        self.pos += len(out)
        return {TP: out}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)


class Sink:
    """Stores whole parts or nothing (one transaction), as the sinks do; refuses a part
    holding a ``poison`` offset with a real, wrapped data error."""

    def __init__(self, poison: set[int], outages: int = 0) -> None:
        self.poison, self.outages = poison, outages
        self.calls: list[list[int]] = []
        self.stored: list[int] = []
        self.dead: list[tuple[int, str, str]] = []

    async def handle(self, records: Any) -> None:
        offsets = [r.offset for r in records]
        self.calls.append(offsets)
        if self.outages:
            self.outages -= 1
            raise wrapped(asyncpg.exceptions.ConnectionDoesNotExistError("connection lost"))
        if self.poison & set(offsets):
            raise wrapped(asyncpg.exceptions.NumericValueOutOfRangeError("integer out of range"))
        self.stored += offsets

    async def dead_letter(self, record: Any, error_class: str, reason: str) -> None:
        self.dead.append((record.offset, error_class, reason))


def _run(consumer: Consumer, sink: Sink, *, max_batch: int, hook: bool = True) -> None:
    stop = asyncio.Event()
    policy = BatchPolicy(max_batch=max_batch, initial_backoff_s=0.001)

    async def main() -> None:
        task = asyncio.create_task(
            run_batches(consumer, sink.handle, policy=policy, stop=stop, dead_letter=sink.dead_letter if hook else None)
        )
        for _ in range(300):
            if consumer.commits and consumer.commits[-1] == {TP: consumer.n}:
                break
            await asyncio.sleep(0.001)
        stop.set()
        await task

    asyncio.run(main())


@pytest.mark.parametrize("poison", [{0}, {5}, {15}, {3, 4, 11}, set(range(16))])
def test_refused_records_are_isolated_and_dead_lettered_the_others_stored_once(poison: set[int]) -> None:
    consumer, sink = Consumer(16), Sink(poison)
    _run(consumer, sink, max_batch=16)
    assert sink.stored == [o for o in range(16) if o not in poison]  # in order, each once
    assert [d[0] for d in sink.dead] == sorted(poison)
    assert {d[1] for d in sink.dead} <= {STORE_ERROR_CLASS}
    assert all("SQLSTATE 22003" in d[2] for d in sink.dead)
    assert consumer.commits == [{TP: 16}]
    # a part that succeeded is never handled again: every record is in at most one
    # successful call, and a clean batch is handled whole
    if not poison:
        assert sink.calls == [list(range(16))]


def test_a_refused_single_record_batch_is_dead_lettered_directly() -> None:
    consumer, sink = Consumer(3), Sink({1})
    _run(consumer, sink, max_batch=1)
    assert sink.calls == [[0], [1], [2]]
    assert sink.stored == [0, 2] and [d[0] for d in sink.dead] == [1]
    assert consumer.commits == [{TP: 1}, {TP: 2}, {TP: 3}]


def test_an_outage_while_halving_retries_the_half_not_the_batch() -> None:
    consumer, sink = Consumer(4), Sink({3})
    sink_handle = sink.handle
    calls = [0]

    async def handle(records: Any) -> None:
        calls[0] += 1
        if calls[0] == 2:  # the first half, after the whole batch was refused
            sink.outages = 2
        await sink_handle(records)

    sink.handle = handle  # type: ignore[method-assign]
    _run(consumer, sink, max_batch=4)
    assert sink.calls == [[0, 1, 2, 3], [0, 1], [0, 1], [0, 1], [2, 3], [2], [3]]
    assert sink.stored == [0, 1, 2] and [d[0] for d in sink.dead] == [3]
    assert consumer.commits == [{TP: 4}] and not consumer.paused


def test_without_a_hook_a_refused_batch_is_retried_as_before() -> None:
    consumer, sink = Consumer(2), Sink({1})
    _run(consumer, sink, max_batch=2, hook=False)
    assert sink.stored == [] and sink.dead == [] and consumer.commits == []
    assert len(sink.calls) > 2 and all(c == [0, 1] for c in sink.calls)


def _tripping(sink: Any) -> Any:
    async def tripping(record: Any, error_class: str, reason: str) -> None:
        sink.dead.append((record.offset, error_class, reason))
        raise StopAfterBatch("too many dead letters")  # the sink's ratio guard, after writing

    return tripping


def _run_tripping(consumer: Any, sink: Any) -> None:
    async def main() -> None:
        policy = BatchPolicy(max_batch=4)
        await run_batches(consumer, sink.handle, policy=policy, stop=asyncio.Event(), dead_letter=_tripping(sink))

    with pytest.raises(StopAfterBatch):
        asyncio.run(main())


@pytest.mark.parametrize("refused", [{0}, {0, 1, 2, 3}], ids=["one", "every"])
def test_a_guard_that_trips_while_halving_stops_there_uncommitted(refused: set[int]) -> None:
    """Before: the halving went on after the guard tripped, so a refusal of every record (a
    constraint an operator added) dead-lettered the whole batch and committed it, one batch
    per restart: the topic drained into the DLQ. Now nothing more is handled or
    dead-lettered, and the batch stays uncommitted for the next run."""
    consumer, sink = Consumer(4), Sink(refused)
    _run_tripping(consumer, sink)
    assert sink.stored == [] and [d[0] for d in sink.dead] == [0]
    assert consumer.commits == []


def test_a_guard_that_trips_on_the_last_record_commits_the_batch() -> None:
    """Nothing of the batch is left to handle: its effect is complete, so it is committed
    before the error ends the loop (as for the handlers' own dead letters)."""
    consumer, sink = Consumer(4), Sink({3})
    _run_tripping(consumer, sink)
    assert sink.stored == [0, 1, 2] and [d[0] for d in sink.dead] == [3]
    assert consumer.commits == [{TP: 4}]
