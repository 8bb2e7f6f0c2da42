"""The scored-event and ledger retention (``expire``) deletes a backlog in chunks, each
its own transaction, scored events first: a run that fails part-way keeps the chunks it
committed and never leaves a stored event without its ledger id; the next run finishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from tw_testing import fresh_database

from services.aggregator.persist import expire, store_batch
from shared.config import PostgresSettings
from shared.db.session import make_engine, make_sessionmaker
from shared.events import Score, ScoredEvent

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)
CHUNK = 100
# (tag, rows, age of both rows, whether the scored event is stored too); retention 7 and 30 days
GROUPS = (
    ("both-expired", 1_250, 40 * DAY, True),  # both go
    ("scored-expired", 530, 10 * DAY, True),  # the event goes, its id stays
    ("scored-edge-out", 20, 7 * DAY + 10 * 60 * timedelta(seconds=1), True),  # just past 7 days: the event goes
    ("scored-edge-in", 20, 7 * DAY - 10 * 60 * timedelta(seconds=1), True),  # just inside: stays
    ("ledger-edge-out", 20, 30 * DAY + timedelta(minutes=10), False),  # an id just past 30 days goes
    ("ledger-edge-in", 20, 30 * DAY - timedelta(minutes=10), False),  # just inside: stays
    ("ledger-only", 470, 40 * DAY, False),  # an id whose event went long ago: goes
    ("recent", 300, DAY, True),  # both stay
)
SCORED_EXPIRED = 1_250 + 530 + 20
LEDGER_EXPIRED = 1_250 + 20 + 470


@pytest.fixture(scope="module")
def pg_settings() -> Iterator[PostgresSettings]:
    """A database of this module's own: its rows weeks old would be expired by (and would
    count in) the retention runs of other tests."""
    with fresh_database() as settings:
        yield settings


@pytest.fixture
async def engine(pg_settings: PostgresSettings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(pg_settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


_SCORED = text(
    """
    INSERT INTO scored_events (id, stream, event_time, received_time, entities, text, sentiment,
        sentiment_confidence, sentiment_score, negative_prob, model_version, created_at)
    SELECT :tag || '-' || i, 'news', :at, :at, ARRAY['e'], 't', 'neutral', 0.9, 0.0, 0.1, 'v1', :at
    FROM generate_series(1, :n) AS i
    """
)
_LEDGER = text(
    "INSERT INTO counted_events (id, stream, counted_at) SELECT :tag || '-' || i, 'news', :at "
    "FROM generate_series(1, :n) AS i"
)
# stored events without their ledger id: a replay of one would be counted again
_UNLEDGERED = text(
    "SELECT count(*) FROM scored_events s WHERE NOT EXISTS "
    "(SELECT 1 FROM counted_events c WHERE c.id = s.id AND c.stream = s.stream)"
)


async def _fill(sessions: async_sessionmaker[AsyncSession]) -> None:
    now = datetime.now(UTC)
    async with sessions.begin() as s:
        await s.execute(text("TRUNCATE scored_events, counted_events"))
        for tag, n, age, stored in GROUPS:
            params = {"tag": tag, "n": n, "at": now - age}
            await s.execute(_LEDGER, params)
            if stored:
                await s.execute(_SCORED, params)


def _tag(row_id: str) -> str:
    return row_id.rsplit("-", 1)[0]


async def _left(sessions: async_sessionmaker[AsyncSession]) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per group left in (scored_events, counted_events)."""
    out: list[dict[str, int]] = []
    async with sessions() as s:
        for table in ("scored_events", "counted_events"):
            ids = (await s.execute(text(f"SELECT id FROM {table}"))).scalars()
            counts: dict[str, int] = {}
            for i in ids:
                counts[_tag(i)] = counts.get(_tag(i), 0) + 1
            out.append(counts)
    return out[0], out[1]


async def _unledgered(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as s:
        return int((await s.execute(_UNLEDGERED)).scalar_one())


EXPECTED_SCORED = {"scored-edge-in": 20, "recent": 300}
EXPECTED_LEDGER = {
    "scored-expired": 530,
    "scored-edge-out": 20,
    "scored-edge-in": 20,
    "ledger-edge-in": 20,
    "recent": 300,
}


class Watch:
    """Each statement the engine sends, and each commit and rollback, in order; optionally
    fails the ``fail_at``-th DELETE (counted from 1) as a crash or a statement timeout would."""

    def __init__(self, engine: AsyncEngine, fail_at: int | None = None) -> None:
        self.log: list[str] = []
        self.fail_at = fail_at
        self.deletes = 0
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._execute)
        event.listen(sync, "commit", lambda _c: self.log.append("COMMIT"))
        event.listen(sync, "rollback", lambda _c: self.log.append("ROLLBACK"))

    def _execute(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        if words[0].upper() == "DELETE":
            self.deletes += 1
            if self.deletes == self.fail_at:
                raise RuntimeError("injected failure")
            self.log.append(f"DELETE {words[2]}")

    def transactions(self) -> list[list[str]]:
        """The DELETEs of each transaction that deleted (committed or not)."""
        out: list[list[str]] = []
        current: list[str] = []
        for entry in self.log:
            if entry in ("COMMIT", "ROLLBACK"):
                if current:
                    out.append(current)
                current = []
            elif entry.startswith("DELETE"):
                current.append(entry)
        return out


async def test_a_backlog_of_many_chunks_goes_one_transaction_a_chunk(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _fill(sessions)
    watch = Watch(engine)
    assert await expire(sessions, scored_days=7, ledger_days=30, chunk=CHUNK) == (SCORED_EXPIRED, LEDGER_EXPIRED)
    assert await _left(sessions) == (EXPECTED_SCORED, EXPECTED_LEDGER)
    # one chunk a transaction, and every scored chunk before the first ledger chunk
    transactions = watch.transactions()
    assert all(len(t) == 1 for t in transactions), transactions
    tables = [t[0].split()[1] for t in transactions]
    assert tables == ["scored_events"] * (SCORED_EXPIRED // CHUNK + 1) + ["counted_events"] * (
        LEDGER_EXPIRED // CHUNK + 1
    ), tables
    assert await _unledgered(sessions) == 0
    # nothing more to do
    assert await expire(sessions, scored_days=7, ledger_days=30, chunk=CHUNK) == (0, 0)


@pytest.mark.parametrize(
    "fail_at",
    [
        pytest.param(4, id="in-the-scored-events"),
        pytest.param(SCORED_EXPIRED // CHUNK + 1 + 3, id="in-the-ledger"),
    ],
)
async def test_a_run_failing_between_chunks_keeps_what_it_committed_and_every_stored_events_id(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], fail_at: int
) -> None:
    await _fill(sessions)
    Watch(engine, fail_at=fail_at)
    with pytest.raises(RuntimeError, match="injected failure"):
        await expire(sessions, scored_days=7, ledger_days=30, chunk=CHUNK)
    scored, ledger = await _left(sessions)
    committed = (fail_at - 1) * CHUNK  # the chunks before the failing one stay deleted
    scored_deleted = min(committed, SCORED_EXPIRED)
    ledger_deleted = max(0, committed - (SCORED_EXPIRED // CHUNK + 1) * CHUNK)
    assert sum(scored.values()) == 20 + 300 + SCORED_EXPIRED - scored_deleted
    assert sum(ledger.values()) == 20 + 300 + 530 + 20 + 20 + LEDGER_EXPIRED - ledger_deleted
    assert await _unledgered(sessions) == 0  # a stored event never loses its id
    # the next run deletes the rest
    assert await expire(sessions, scored_days=7, ledger_days=30, chunk=CHUNK) == (
        SCORED_EXPIRED - scored_deleted,
        LEDGER_EXPIRED - ledger_deleted,
    )
    assert await _left(sessions) == (EXPECTED_SCORED, EXPECTED_LEDGER)


async def test_a_ledger_id_outlives_its_stored_event_whatever_the_retentions(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Called with a ledger retention shorter than the scored events' (the settings refuse
    it), the ids of the events still stored stay until their events go."""
    await _fill(sessions)
    scored, ledger = await expire(sessions, scored_days=30, ledger_days=7, chunk=CHUNK)
    assert scored == 1_250  # both-expired (the ids past 30 days have no event)
    # the oldest event left is 10 days old: the ids before it go, its own and later ones stay
    assert ledger == 1_250 + 20 + 20 + 470
    assert await _unledgered(sessions) == 0
    left_scored, left_ledger = await _left(sessions)
    assert "both-expired" not in left_scored and left_ledger["scored-expired"] == 530


async def test_batches_are_stored_between_the_chunks_of_a_run(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The run yields between its chunks: the aggregator's batches commit while it goes on."""
    await _fill(sessions)
    watch = Watch(engine)
    event.listen(engine.sync_engine, "before_cursor_execute", _mark_batches(watch))
    run = asyncio.create_task(expire(sessions, scored_days=7, ledger_days=30, chunk=CHUNK))
    now, stored = datetime.now(UTC), 0
    while not run.done():
        event_ = ScoredEvent(
            id=f"live-{stored}",
            stream="news",
            event_time=now,
            received_time=now,
            text="t",
            entities=["e"],
            sentiment=Score(label="neutral", confidence=0.9, probs={"neutral": 0.9}, model="m", version="v1"),
        )
        stored += await store_batch(sessions, [event_])
    assert await run == (SCORED_EXPIRED, LEDGER_EXPIRED)
    first = watch.log.index("DELETE scored_events")
    last = len(watch.log) - 1 - watch.log[::-1].index("DELETE counted_events")
    assert "BATCH" in watch.log[first:last], watch.log
    scored, ledger = await _left(sessions)
    assert scored.get("live") == ledger.get("live") == stored > 0


def _mark_batches(watch: Watch) -> Any:
    def mark(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("INSERT INTO counted_events"):
            watch.log.append("BATCH")

    return mark
