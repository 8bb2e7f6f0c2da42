from __future__ import annotations

import aiokafka.errors
import asyncpg
import pytest
import redis.exceptions
import sqlalchemy.exc

from shared.faults import unreachable


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> sqlalchemy.exc.DBAPIError:
    return sqlalchemy.exc.DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated)


def _caused_by(cause: BaseException) -> RuntimeError:
    try:
        raise RuntimeError("adapter error") from cause
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 15432)"),
        TimeoutError(),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:16379"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        sqlalchemy.exc.TimeoutError("QueuePool limit reached"),
        aiokafka.errors.KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 19092)]"),
        aiokafka.errors.KafkaTimeoutError(),
        _wrapped(RuntimeError("stale"), invalidated=True),
        _wrapped(_caused_by(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_dependency_that_cannot_be_reached(exc: BaseException) -> None:
    assert unreachable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad"),
        KeyError("x"),
        aiokafka.errors.MessageSizeTooLargeError(),
        _wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key")),
        _wrapped(_caused_by(asyncpg.exceptions.UndefinedColumnError("column x does not exist"))),
        _caused_by(ValueError("not a connection problem")),
        # local files: the user's to fix, not a service to wait for
        FileNotFoundError(2, "No such file or directory"),
        IsADirectoryError(21, "Is a directory"),
        PermissionError(13, "Permission denied"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_bug_is_not_an_outage(exc: BaseException) -> None:
    assert not unreachable(exc)


def test_an_exception_chain_that_loops_ends() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert not unreachable(a)
