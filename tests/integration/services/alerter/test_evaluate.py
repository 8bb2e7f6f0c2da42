"""Live evaluation on the real database and Redis: how far it walks (never past the
wall clock), what it says when it skips minutes, and its Redis dedup, which other
deployments may share."""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alert_scenario import T0, add_rule, scored, timeline
from integration.services.alerter.helpers import showing_logs
from pydantic import SecretStr
from redis.asyncio import Redis
from services_proc import log_tail, running
from sqlalchemy import delete, select, text
from tw_testing import wait_until

from services.aggregator.persist import store_batch
from services.alerter import repo
from services.alerter.config import AlerterSettings
from services.alerter.detect import MINUTE
from services.alerter.evaluate import Evaluator
from shared.config import PostgresSettings
from shared.db.migrate import upgrade
from shared.db.models import Alert, AlertState
from shared.db.session import make_engine, make_sessionmaker
from shared.events import ScoredEvent
from shared.metrics import metrics

pytestmark = pytest.mark.integration

_ids = itertools.count()


def burst(entity: str, minute: datetime, negative: int, calm: int) -> list[ScoredEvent]:
    """``negative`` negative and ``calm`` neutral events about ``entity`` (only: stamped at
    the real wall clock, they stay out of the stream's ``_all`` the other tests share)."""
    events = []
    for k in range(negative + calm):
        words = "fraud probe" if k < negative else "quiet trading"
        event = scored(entity, next(_ids), minute + timedelta(seconds=k), k < negative, f"{entity} {words} {k}")
        events.append(event.model_copy(update={"entities": [entity]}))
    return events


def calm(entity: str, first: datetime, last: datetime) -> list[ScoredEvent]:
    """A calm baseline (1 of 6 negative) for every minute from ``first`` to ``last``."""
    out: list[ScoredEvent] = []
    t = first
    while t <= last:
        out += burst(entity, t, 1, 5)
        t += MINUTE
    return out


def wall_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


async def alerts_for(sessions: Any, rule_id: int) -> list[Alert]:
    async with sessions() as s:
        return list((await s.execute(select(Alert).where(Alert.rule_id == rule_id).order_by(Alert.episode))).scalars())


async def open_claim(sessions: Any, rule_id: int) -> str | None:
    """The alert the rule's detector state says is open."""
    async with sessions() as s:
        state = (await s.execute(select(AlertState.state).where(AlertState.rule_id == rule_id))).scalar_one()
    claim: str | None = state.get("open_alert")
    return claim


@pytest.fixture
async def redis(redis_settings: Any) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_settings.url.get_secret_value())
    yield client
    await client.aclose()


async def test_an_event_stamped_ahead_of_the_wall_clock_does_not_hide_the_spike_before_it(
    service_settings: Callable[..., Any], sessions: Any, redis: Redis, unique: str
) -> None:
    """A source whose clock runs three minutes fast (the classifier keeps event times up
    to five minutes ahead) sends one calm event; then the on-time data of the current
    minute carries a spike. It fires, as it would without that event. Before, the
    evaluator walked on to the early event's minute, past the current one before its
    data arrived, and never came back: nothing fired."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"AHEAD{unique}"
    rule_id = await add_rule(sessions, f"ahead-{unique}", entity, window_s=120, min_volume=5, resolve_after_s=180)
    evaluator = Evaluator(settings, sessions, redis)
    now = wall_minute()
    await store_batch(sessions, calm(entity, now - 30 * MINUTE, now - MINUTE))
    await evaluator.evaluate("news", entity, "v1")
    await store_batch(sessions, burst(entity, now + 3 * MINUTE, 0, 1))
    await evaluator.evaluate("news", entity, "v1")
    await store_batch(sessions, burst(entity, now, 8, 1))
    await evaluator.evaluate("news", entity, "v1")
    (alert,) = await alerts_for(sessions, rule_id)
    assert alert.window_start <= now < alert.window_end
    assert ("news", entity, "v1") in evaluator.ahead  # its early minute is still to come: the sweep will


async def test_a_spike_stamped_ahead_of_the_wall_clock_fires_at_a_sweep_once_its_minute_comes(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    """The spike's minute is still to come when its data is stored, and nothing more
    arrives: the alerter waits for the minute, then a sweep (every 5 s here) evaluates
    it and fires. Before, it fired at once on a minute that had not yet happened."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"EARLY{unique}"
    rule_id = await add_rule(sessions, f"early-{unique}", entity, window_s=120, min_volume=5, resolve_after_s=180)
    spike = (datetime.now(UTC) + timedelta(seconds=30)).replace(second=0, microsecond=0) + MINUTE  # 30-90 s ahead
    with running("alerter", settings, tmp_path, **alerter_env(unique)):
        await wait_until(lambda: "alerter running" in log_tail(tmp_path, "alerter"), timeout=60)
        await store_batch(sessions, calm(entity, spike - 32 * MINUTE, spike - 2 * MINUTE))
        await store_batch(sessions, burst(entity, spike, 8, 1))
        with showing_logs(tmp_path, "alerter"):
            (alert,) = await wait_until(lambda: alerts_for(sessions, rule_id), timeout=150)
    assert alert.fired_at >= spike, (alert.fired_at, spike)
    assert alert.window_start <= spike < alert.window_end


async def test_minutes_beyond_max_steps_are_skipped_with_a_warning(
    service_settings: Callable[..., Any],
    sessions: Any,
    redis: Redis,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One update reaches 160 minutes past the last evaluation, with TW_ALERTER_MAX_STEPS
    at 60: the oldest 100 minutes are not evaluated (max_steps means that), and the log
    says which. Before, they were skipped without a word."""
    settings: AlerterSettings = service_settings(AlerterSettings, max_steps=60)
    entity = f"STEPS{unique}"
    await add_rule(sessions, f"steps-{unique}", entity, window_s=120, min_volume=5)
    evaluator = Evaluator(settings, sessions, redis)
    events = timeline(entity, 200, [(50, 52)])
    await store_batch(sessions, [e for e in events if e.event_time < T0 + 40 * MINUTE])
    await evaluator.evaluate("news", entity, "v1")
    await store_batch(sessions, [e for e in events if e.event_time >= T0 + 40 * MINUTE])
    skipped_before = metrics().alert_minutes_skipped._value.get()
    with caplog.at_level(logging.WARNING, logger="services.alerter.evaluate"):
        await evaluator.evaluate("news", entity, "v1")
    # this rule's 101 minutes at least (the shipped rules, evaluated too, skip theirs)
    assert metrics().alert_minutes_skipped._value.get() - skipped_before >= 101
    mine = f"rule steps-{unique} "  # the shipped rules watch every entity: they warn too
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith(mine)]
    assert warnings == [
        f"rule steps-{unique} entity {entity} model v1: minutes {(T0 + 39 * MINUTE).isoformat()} to "
        f"{(T0 + 139 * MINUTE).isoformat()} skipped, more than TW_ALERTER_MAX_STEPS (60) minutes behind; "
        "spikes in them do not alert (a backtest over them shows what would have)"
    ]


async def test_minutes_without_data_beyond_max_steps_are_skipped_without_a_warning(
    service_settings: Callable[..., Any],
    sessions: Any,
    redis: Redis,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sparse entity's news after a quiet weekend: the minutes skipped held no data, so no
    spike in them went unalerted, and the warning (on every such entity each Monday) said
    otherwise."""
    settings: AlerterSettings = service_settings(AlerterSettings, max_steps=60)
    entity = f"QUIET{unique}"
    await add_rule(sessions, f"quiet-{unique}", entity, window_s=120, min_volume=5)
    evaluator = Evaluator(settings, sessions, redis)
    events = timeline(entity, 200, [])
    await store_batch(sessions, [e for e in events if e.event_time < T0 + 10 * MINUTE])
    await evaluator.evaluate("news", entity, "v1")
    await store_batch(sessions, [e for e in events if e.event_time >= T0 + 190 * MINUTE])
    with caplog.at_level(logging.WARNING, logger="services.alerter.evaluate"):
        await evaluator.evaluate("news", entity, "v1")
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"rule quiet-{unique} ")] == []


@pytest.fixture
async def other_deployment() -> AsyncIterator[PostgresSettings]:
    """A second deployment's database (same PostgreSQL server and Redis as the tests')."""
    name = f"tw_test_other_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://tonewatch:tonewatch@127.0.0.1:15432/tonewatch"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await execute(f'CREATE DATABASE "{name}"')
    settings = PostgresSettings(url=SecretStr(f"postgresql+asyncpg://tonewatch:tonewatch@127.0.0.1:15432/{name}"))
    try:
        await asyncio.to_thread(upgrade, settings)
        yield settings
    finally:
        await execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_deployments_sharing_a_redis_each_fire_their_own_alert(
    service_settings: Callable[..., Any],
    pg_settings: PostgresSettings,
    sessions: Any,
    redis: Redis,
    unique: str,
    other_deployment: PostgresSettings,
) -> None:
    """Two deployments, each with its own database, share one Redis; each has a rule with
    the same id about the same entity, and sees the same spike. Each fires its alert,
    under a dedup key of its own. Before, the key named no deployment: the second found
    the first's key, inserted nothing, and its detector state claimed an alert its
    database did not have."""
    mine: AlerterSettings = service_settings(AlerterSettings)
    theirs = mine.model_copy(update={"postgres": other_deployment})
    entity = f"SHARED{unique}"
    rule_id = await add_rule(sessions, f"shared-{unique}", entity)
    engine = make_engine(other_deployment)
    their_sessions = make_sessionmaker(engine)
    data = timeline(entity, 70, [(60, 70)])  # still spiking at the end: the alerts stay open
    try:
        async with their_sessions.begin() as s:  # their next rule gets my rule's id
            await s.execute(
                text("SELECT setval(pg_get_serial_sequence('alert_rules', 'id'), :id, false)"), {"id": rule_id}
            )
        assert await add_rule(their_sessions, f"shared-{unique}", entity) == rule_id
        for settings, db in ((theirs, their_sessions), (mine, sessions)):
            await store_batch(db, data)
            await Evaluator(settings, db, redis).evaluate("news", entity, "v1")
        (their_alert,) = await alerts_for(their_sessions, rule_id)
        assert await open_claim(their_sessions, rule_id) == their_alert.id
    finally:
        await engine.dispose()
    (my_alert,) = await alerts_for(sessions, rule_id)
    assert my_alert.id == their_alert.id  # same rule id, entity and minute
    assert await open_claim(sessions, rule_id) == my_alert.id
    keys = {k.decode() for k in await redis.keys(f"tw:alert:*:{rule_id}:{entity}:*:{my_alert.id}")}
    assert keys == {
        f"tw:alert:127.0.0.1:15432/{pg.url.get_secret_value().rsplit('/', 1)[1]}:{rule_id}:{entity}:300:{my_alert.id}"
        for pg in (pg_settings, other_deployment)
    }


async def test_a_stale_dedup_key_does_not_stand_for_an_alert_this_database_lacks(
    service_settings: Callable[..., Any], sessions: Any, redis: Redis, unique: str
) -> None:
    """The alert fired and its dedup key is in Redis; then the database loses it (it was
    recreated under the same name, or restored from before the spike) and the spike is
    evaluated again. The alert fires again, and the detector state claims it. Before,
    the Redis key alone stopped the insert, so the state claimed an alert that did not
    exist."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"STALE{unique}"
    rule_id = await add_rule(sessions, f"stale-{unique}", entity, resolve_after_s=3600)
    await store_batch(sessions, timeline(entity, 70, [(60, 70)]))  # still spiking at the end
    evaluator = Evaluator(settings, sessions, redis)
    await evaluator.evaluate("news", entity, "v1")
    (first,) = await alerts_for(sessions, rule_id)
    async with sessions.begin() as s:  # the database forgets the alert and the detector state
        await s.execute(delete(Alert).where(Alert.rule_id == rule_id))
        await s.execute(delete(AlertState).where(AlertState.rule_id == rule_id))
    await evaluator.evaluate("news", entity, "v1")
    (again,) = await alerts_for(sessions, rule_id)
    assert again.id == first.id and again.status == "open"
    assert await open_claim(sessions, rule_id) == again.id


async def test_a_resolution_is_logged_once_committed_and_not_for_an_alert_an_operator_resolved(
    service_settings: Callable[..., Any],
    sessions: Any,
    redis: Redis,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The alerter logged "alert ... resolved" for an alert an operator had resolved already
    (``tonewatch alerts resolve``: its detector state still holds it open), a resolution it did
    not make. Its own resolution is logged once."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    for name, by_hand in (("hand", True), ("self", False)):
        entity = f"{name.upper()}{unique}"
        rule_id = await add_rule(sessions, f"{name}-{unique}", entity)
        evaluator = Evaluator(settings, sessions, redis)
        events = timeline(entity, 110, [(60, 65)])
        await store_batch(sessions, [e for e in events if e.event_time < T0 + 68 * MINUTE])
        await evaluator.evaluate("news", entity, "v1")
        [alert] = await alerts_for(sessions, rule_id)
        assert alert.status == "open"
        if by_hand:
            async with sessions.begin() as s:
                await repo.transition(s, alert.id, "resolve")
        await store_batch(sessions, [e for e in events if e.event_time >= T0 + 68 * MINUTE])
        with caplog.at_level(logging.INFO, logger="services.alerter.evaluate"):
            await evaluator.evaluate("news", entity, "v1")
        [alert] = await alerts_for(sessions, rule_id)
        assert alert.status == "resolved" and await open_claim(sessions, rule_id) is None
        logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"alert {alert.id} resolved")]
        assert len(logged) == (0 if by_hand else 1), logged
