"""The alerts' and rules' reads run under the API's statement time limit
(``TW_API_READ_TIMEOUT_S``) like the other reads, and only that limit is a
``query_timeout``: a statement an operator cancels is a database failure (500)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from integration.services.api.helpers import assert_error, read_cancelled_by_an_operator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import INT4_MAX

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("table", "path", "then"),
    [
        ("alerts", "/v1/alerts", 200),
        ("alerts", "/v1/alerts/no-such-alert", 404),
        ("alert_rules", "/v1/rules", 200),
        ("alert_rules", f"/v1/rules/{INT4_MAX}", 404),
    ],
)
async def test_an_alerts_or_rules_read_past_the_time_limit_is_a_503(
    limited: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], table: str, path: str, then: int
) -> None:
    """A read held up by a lock past TW_API_READ_TIMEOUT_S is cancelled by PostgreSQL:
    503 query_timeout with Retry-After (it hung until the lock went before); once the
    lock is gone the same read answers as usual."""
    async with sessions() as locker:
        await locker.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        try:
            r = await asyncio.wait_for(limited.get(path), 10)
        finally:
            await locker.rollback()
    assert_error(r, 503, "query_timeout")
    assert r.headers["Retry-After"].isdigit(), r.headers
    assert (await limited.get(path)).status_code == then


async def test_a_read_an_operator_cancels_is_not_a_query_timeout(
    unlimited: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """pg_cancel_backend on a read waiting for a lock ('canceling statement due to user
    request', SQLSTATE 57014 like a statement timeout) is no timeout of the client's
    query: the API's answer to an unexpected database failure, 500 internal_error."""
    r = await read_cancelled_by_an_operator(unlimited, sessions)
    assert_error(r, 500, "internal_error")
    assert (await unlimited.get("/v1/alerts")).status_code == 200
