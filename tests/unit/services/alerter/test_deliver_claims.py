""":attr:`Deliverer.in_flight` carries each alert's claim token (:class:`Claims`) for the
renewal, and is still the set of alert ids the renew loop and the outbox used."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import ClauseElement
from sqlalchemy.dialects import postgresql

from services.alerter import publish
from services.alerter.deliver import Claims, Deliverer
from shared.events import AlertEvent

AT = datetime(2031, 3, 9, 14, 30, tzinfo=UTC)


def _alert(alert_id: str) -> AlertEvent:
    return AlertEvent(
        id=alert_id, rule_id=7, rule_name="r", entity="ACME", stream="news", severity="critical", status="open",
        window_start=AT, window_end=AT, fired_at=AT, explanation={},
    )  # fmt: skip


def test_claims_are_a_set_of_alert_ids_with_their_tokens() -> None:
    claims = Claims({"al-1": "t1", "al-2": None})
    assert claims == frozenset({"al-1", "al-2"}) and "al-1" in claims
    assert dict(claims.tokens) == {"al-1": "t1", "al-2": None}
    assert Claims({}) == frozenset()


async def test_in_flight_gives_the_token_each_alert_was_submitted_under() -> None:
    d = Deliverer(None, b"k", timeout_s=1.0, max_attempts=1, backoff_s=0.1)  # type: ignore[arg-type]
    stop = asyncio.Event()

    async def held(*_: object) -> None:
        await stop.wait()

    d._deliver_all = held  # type: ignore[method-assign,assignment]
    d.submit(_alert("al-1"), [], claim="t1")
    d.submit(_alert("al-2"), [])
    assert dict(d.in_flight.tokens) == {"al-1": "t1", "al-2": None}
    stop.set()
    await asyncio.gather(*d._tasks)
    assert d.in_flight == frozenset()
    await d._client.aclose()


class _Recorded:
    """A session maker whose one transaction records the statements it is given."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def begin(self) -> _Recorded:
        return self

    async def __aenter__(self) -> _Recorded:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def execute(self, statement: ClauseElement) -> _NoRows:
        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        compiled = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        self.sql.append(str(compiled))
        return _NoRows()


class _NoRows:
    """A statement's result that returned no rows."""

    def scalars(self) -> list[str]:
        return []


async def test_the_renewal_extends_a_claim_only_while_it_holds_the_token_it_was_given() -> None:
    sessions = _Recorded()
    await publish.renew_claims(sessions, Claims({"al-1": "t1", "al-2": None}))  # type: ignore[arg-type]
    (sql,) = sessions.sql
    assert "(alerts.id, alerts.notify_claim) IN (('al-1', 't1'))" in sql
    assert "alerts.id IN ('al-2')" in sql  # submitted without a claim: by id, as before
    await publish.renew_claims(sessions, frozenset({"al-3"}))  # type: ignore[arg-type]
    where = sessions.sql[-1].split(" WHERE ")[1]
    assert "alerts.id IN ('al-3')" in where and "notify_claim" not in where
    await publish.renew_claims(sessions, Claims({}))  # type: ignore[arg-type]
    assert len(sessions.sql) == 2  # nothing in flight: no statement
