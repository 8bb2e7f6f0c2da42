"""A cancelled statement is a ``query_timeout`` by its running time when PostgreSQL's
message is translated (``lc_messages``), and an operator's cancel stays a 500 (no
database: the driver's error raised through SQLAlchemy as a route would see it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asyncpg.exceptions import QueryCanceledError
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from services.api.errors import (
    StatementTime,
    cancel_was_timeout,
    install_error_handlers,
    note_statement_time,
    statement_timed_out,
)

TIMEOUT = "canceling statement due to statement timeout"
USER_REQUEST = "canceling statement due to user request"
# PostgreSQL's German messages of the two (lc_messages 'de_DE'): neither has the English words
TIMEOUT_DE = "storniere Anfrage wegen Zeitüberschreitung der Anweisung"
USER_REQUEST_DE = "storniere Anfrage wegen Benutzeraufforderung"
LIMIT = 0.3


def canceled(message: str, elapsed_s: float | None) -> OperationalError:
    """SQLAlchemy's error for a statement PostgreSQL cancelled with ``message`` (57014),
    with the running time ``Deps.reads`` notes on the driver's error (None: no limit)."""
    driver_error = QueryCanceledError(message)
    if elapsed_s is not None:
        note_statement_time(driver_error, elapsed_s=elapsed_s, limit_s=LIMIT)
    return OperationalError("SELECT 1", {}, driver_error)


@pytest.mark.parametrize(
    ("message", "elapsed_s", "timed_out"),
    [
        (TIMEOUT, LIMIT + 0.01, True),
        (TIMEOUT, None, True),  # the English message alone says so
        (USER_REQUEST, LIMIT + 0.01, False),  # ... and so: a cancel in the limit's last instant
        (USER_REQUEST, 0.01, False),
        (TIMEOUT_DE, LIMIT, True),  # a statement cannot run past its limit: at it is the timeout
        (TIMEOUT_DE, LIMIT + 0.01, True),
        (USER_REQUEST_DE, LIMIT - 0.01, False),  # cancelled before its limit: an operator's
        (USER_REQUEST_DE, None, False),  # no limit: no timeout
        (TIMEOUT_DE, None, False),
    ],
)
def test_the_decision(message: str, elapsed_s: float | None, timed_out: bool) -> None:
    time = None if elapsed_s is None else StatementTime(elapsed_s=elapsed_s, limit_s=LIMIT)
    assert cancel_was_timeout(message, time) is timed_out
    assert statement_timed_out(canceled(message, elapsed_s)) is timed_out


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/cancel/{reason}")
    async def cancel(reason: str) -> None:
        if reason == "timeout":
            raise canceled(TIMEOUT_DE, elapsed_s=LIMIT + 0.002)
        raise canceled(USER_REQUEST_DE, elapsed_s=0.05)

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_a_translated_statement_timeout_is_a_503_query_timeout(client: httpx.AsyncClient) -> None:
    r = await client.get("/cancel/timeout")
    assert r.status_code == 503 and r.json()["error"]["code"] == "query_timeout", r.text
    assert r.headers["Retry-After"].isdigit()


async def test_a_translated_operator_cancel_is_a_500(client: httpx.AsyncClient) -> None:
    r = await client.get("/cancel/user")
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error", r.text
