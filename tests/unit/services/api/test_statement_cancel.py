"""Which cancelled statements are a ``query_timeout`` (no database: the driver's error
raised through SQLAlchemy as a route would see it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asyncpg.exceptions import QueryCanceledError
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from services.api.errors import install_error_handlers, statement_timed_out

TIMEOUT = "canceling statement due to statement timeout"
USER_REQUEST = "canceling statement due to user request"


def canceled(message: str) -> OperationalError:
    """SQLAlchemy's error for a statement PostgreSQL cancelled with ``message`` (57014)."""
    return OperationalError("SELECT 1", {}, QueryCanceledError(message))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/cancel/{reason}")
    async def cancel(reason: str) -> None:
        raise canceled(TIMEOUT if reason == "timeout" else USER_REQUEST)

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def test_only_a_statement_timeout_is_a_timeout() -> None:
    assert statement_timed_out(canceled(TIMEOUT))
    assert not statement_timed_out(canceled(USER_REQUEST))
    assert not statement_timed_out(OperationalError("SELECT 1", {}, ConnectionResetError()))


async def test_a_statement_timeout_is_a_503_query_timeout(client: httpx.AsyncClient) -> None:
    r = await client.get("/cancel/timeout")
    assert r.status_code == 503 and r.json()["error"]["code"] == "query_timeout", r.text
    assert r.headers["Retry-After"].isdigit()


async def test_a_user_request_cancel_is_the_unexpected_database_failure(client: httpx.AsyncClient) -> None:
    """pg_cancel_backend's cancel (57014 too) is answered as any database error that is
    neither a timeout nor an unreachable server: 500 internal_error, not query_timeout."""
    r = await client.get("/cancel/user")
    assert r.status_code == 500, r.text
    assert r.json() == {"error": {"code": "internal_error", "message": "internal server error", "details": []}}
    assert "Retry-After" not in r.headers
