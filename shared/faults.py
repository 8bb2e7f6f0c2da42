"""Telling an unreachable dependency (PostgreSQL, Redis, Kafka down or restarting)
apart from a bug, without importing the client libraries here."""

from __future__ import annotations

# Exception class names (anywhere in the MRO) that mean the connection could not be
# made or was lost: asyncpg's connection and shutdown errors, redis-py's
# ConnectionError and TimeoutError, SQLAlchemy's pool TimeoutError, aiokafka's
# KafkaConnectionError ("Unable to bootstrap") and KafkaTimeoutError.
_CONNECTION_ERRORS = frozenset(
    {
        "PostgresConnectionError",
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "TooManyConnectionsError",
        "ConnectionError",
        "TimeoutError",
        "KafkaConnectionError",
        "KafkaTimeoutError",
    }
)


# OSErrors about local files (a missing input, a folder where a file was meant, no
# permission): the user's to fix, never "cannot reach a service".
_LOCAL_FILE_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc``, or the driver error it wraps, says a backing service could not
    be reached or dropped the connection: worth a retry later, not a bug."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _LOCAL_FILE_ERRORS):
            return False  # a path on this machine, not a service: no retry will fix it
        if isinstance(current, OSError) or getattr(current, "connection_invalidated", False):
            return True
        if {cls.__name__ for cls in type(current).__mro__} & _CONNECTION_ERRORS:
            return True
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False
