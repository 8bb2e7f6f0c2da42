"""A read past the API's statement time limit (``TW_API_READ_TIMEOUT_S``) is a 503
``query_timeout``, and a read an operator cancels a 500, whatever language PostgreSQL's
messages are in (``lc_messages``): both are SQLSTATE 57014 and only the untranslated
messages name the cause. ``lc_messages`` is a superuser's setting, which the stack's
role is not, so a translated server is simulated: the English words the API looks for
are ones no message has, and the statements' running time must tell."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from integration.services.api.helpers import assert_error, read_cancelled_by_an_operator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import errors

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def translated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API reads PostgreSQL's messages as a translated server's: no English words."""
    monkeypatch.setattr(errors, "STATEMENT_TIMEOUT", "Zeitüberschreitung der Anweisung")
    monkeypatch.setattr(errors, "USER_REQUEST", "Benutzeraufforderung", raising=False)


@pytest.mark.parametrize("path", ["/v1/alerts", "/v1/alerts/stream"])
async def test_a_read_past_the_time_limit_is_a_503_in_any_language(
    limited: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], path: str
) -> None:
    """A read held up by a lock past the limit: 503 query_timeout (it was a 500 when the
    message was not English); once the lock is gone the read answers as usual."""
    async with sessions() as locker:
        await locker.execute(text("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE"))
        try:
            r = await asyncio.wait_for(limited.get(path), 10)
        finally:
            await locker.rollback()
    assert_error(r, 503, "query_timeout")
    assert (await limited.get("/v1/alerts")).status_code == 200


async def test_a_read_an_operator_cancels_is_a_500_in_any_language(
    unlimited: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """pg_cancel_backend on a read waiting for a lock, well before its limit: 500."""
    r = await read_cancelled_by_an_operator(unlimited, sessions)
    assert_error(r, 500, "internal_error")
    assert (await unlimited.get("/v1/alerts")).status_code == 200
