"""Cold start on the real stack: a surge after a quiet night, about an entity whose
baseline's windows (the three hours before) are empty, fires at once from the entity's
history, live as in the backtest, and the alert says what it was judged against."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alert_scenario import add_rule, scored
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from services.aggregator.persist import store_batch
from services.alerter import store
from services.alerter.backtest import BacktestEvent, backtest
from services.alerter.config import AlerterSettings
from services.alerter.detect import MINUTE, CumulativeCounts, DetectorConfig, State, observe, step
from services.alerter.evaluate import Evaluator
from services.cli.alerts import app
from shared.config import PostgresSettings
from shared.db.models import Alert, AlertRule
from shared.events import ScoredEvent

pytestmark = pytest.mark.integration

MORNING = datetime(2026, 2, 10, 7, 0, tzinfo=UTC)  # the surge starts; nothing since 22:00


def _event(entity: str, i: int, t: datetime, negative: bool, text: str) -> ScoredEvent:
    e = scored(entity, i, t, negative, text)
    alone: ScoredEvent = e.model_copy(update={"entities": [entity]})  # past-stamped: not in ``_all``
    return alone


def _night_then_surge(entity: str) -> list[ScoredEvent]:
    """Yesterday 08:00-22:00: two headlines every 10 minutes, one in five negative. Then
    nothing until 07:00, when two negative headlines a minute arrive for 30 minutes."""
    events, i = [], 0
    for m in range(8 * 60, 22 * 60, 10):
        t = MORNING - timedelta(hours=7, days=1) + m * MINUTE
        for k in range(2):
            neg = k == 0 and (m // 10) % 5 == 0
            events.append(_event(entity, i, t + k * timedelta(seconds=5), neg, f"{entity} trading update {i}"))
            i += 1
    for m in range(30):
        for k in range(2):
            text = f"{entity} hit by fraud probe {m}" if k == 0 else f"{entity} accounting scandal deepens {m}"
            events.append(_event(entity, i, MORNING + m * MINUTE + k * timedelta(seconds=7), True, text))
            i += 1
    return events


async def _live_and_backtest(
    settings: AlerterSettings,
    sessions: async_sessionmaker[AsyncSession],
    rule_id: int,
    entity: str,
    version: str,
    span: tuple[datetime, datetime],
) -> tuple[list[str], list[Alert], list[BacktestEvent]]:
    """The rule's live evaluation of the key (the kinds of its changes) and the alerts it
    stored, then its backtest over ``span``."""
    redis = Redis.from_url(settings.redis.url.get_secret_value())
    try:
        changes = await Evaluator(settings, sessions, redis).evaluate("news", entity, version)
    finally:
        await redis.aclose()
    async with sessions() as s:
        alerts = list((await s.execute(select(Alert).where(Alert.rule_id == rule_id))).scalars())
        rule = await s.get(AlertRule, rule_id)
        assert rule is not None
        events, _ = await backtest(s, rule, settings, *span, entity)
    return [c.kind for c in changes if c.rule.id == rule_id], alerts, events


async def test_a_surge_after_a_quiet_night_fires_from_history_live_and_in_the_backtest(
    service_settings: Callable[..., Any], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    settings: AlerterSettings = service_settings(AlerterSettings)
    assert settings.history_s == 7 * 86_400  # on by default
    entity = f"COLD{unique}"
    rule_id = await add_rule(
        sessions, f"cold-{unique}", entity, window_s=900, min_volume=3, abs_threshold=0.6, z_threshold=1.5
    )
    await store_batch(sessions, _night_then_surge(entity))
    span = (MORNING - timedelta(days=1), MORNING + 2 * 60 * MINUTE)
    kinds, alerts, events = await _live_and_backtest(settings, sessions, rule_id, entity, "v1", span)
    assert kinds == ["fire"] and len(alerts) == 1
    alert = alerts[0]
    # within the surge's first minutes (the rule's minimum volume is three headlines)
    assert MORNING < alert.episode <= MORNING + 3 * MINUTE
    why = alert.explanation
    assert why["baseline_method"] == "history" and why["baseline_windows"] == 0
    assert why["history_volume"] == 168  # yesterday's 84 slots of two headlines
    assert datetime.fromisoformat(why["history_start"]) <= MORNING - timedelta(days=1)
    assert why["z"] >= 1.5 and why["baseline_center"] == pytest.approx(18 / 170, abs=1e-4)
    # the baseline period the terms are set against is that history: yesterday's words
    assert {t["term"] for t in why["top_terms"]} & {"fraud", "probe", "scandal"}
    # the backtest fires the same alert
    assert [e.alert_id for e in events if e.kind == "fire"] == [alert.id]


def _sparse(entity: str, seed: int, end: datetime) -> list[ScoredEvent]:
    """Ten days of bursts of news with gaps of hours between them."""
    rng = random.Random(seed)
    events, i, t = [], 0, end - timedelta(days=10)
    while t < end:
        for _ in range(rng.randint(1, 30)):
            for _ in range(rng.randint(1, 4)):
                events.append(_event(entity, i, t + rng.randint(0, 59) * timedelta(seconds=1), rng.random() < 0.4, "x"))
                i += 1
            t += rng.randint(1, 3) * MINUTE
        t += rng.randint(60, 14 * 60) * MINUTE
    return [e for e in events if e.event_time <= end]


@pytest.mark.parametrize("window_s", [300, 900, 3_600])
async def test_the_loaded_hours_give_the_history_exactly_as_every_minute(
    sessions: async_sessionmaker[AsyncSession], unique: str, window_s: int
) -> None:
    """What the alerter loads (minutes at the windows' edges, hourly totals between, the
    history's hours) observes what every minute does, cold starts included."""
    entity = f"SPARSE{unique}{window_s}"
    end = datetime(2026, 2, 20, 17, 42, tzinfo=UTC)
    events = _sparse(entity, window_s, end)
    for k in range(0, len(events), 2_000):
        await store_batch(sessions, events[k : k + 2_000])
    cfg = DetectorConfig(
        window_s=window_s,
        min_volume=2,
        abs_threshold=0.3,
        z_threshold=0.5,
        baseline="ewma",
        cooldown_s=600,
        resolve_after_s=300,
        history_s=2 * 86_400,
    )
    first, last = end - 1_439 * MINUTE, end
    async with sessions() as s:
        loaded = await store.load_windows(s, "news", entity, "v1", first, last, cfg)
        everything = await store.load_counts(s, "news", entity, "v1", end - timedelta(days=11), last)
    assert isinstance(everything, CumulativeCounts)
    cold = 0
    for run_cfg in (cfg, replace(cfg, baseline="mad")):
        state_a, state_b, t = State(), State(), first
        while t <= last:
            a, b = observe(loaded, t, run_cfg), observe(everything, t, run_cfg)
            assert a == b, (window_s, t)
            cold += a.baseline.history_start is not None
            state_a, act_a = step(state_a, a, run_cfg, "x")
            state_b, act_b = step(state_b, b, run_cfg, "x")
            assert act_a == act_b and state_a == state_b
            t += MINUTE
    assert cold > 0


async def test_the_backtest_command_marks_a_fire_on_history(
    sessions: async_sessionmaker[AsyncSession], pg_settings: PostgresSettings, unique: str
) -> None:
    entity = f"COLDCLI{unique}"
    await add_rule(
        sessions, f"coldcli-{unique}", entity, window_s=900, min_volume=3, abs_threshold=0.6, z_threshold=1.5
    )
    await store_batch(sessions, _night_then_surge(entity))
    base = ["backtest", "--rule", f"coldcli-{unique}", "--from", (MORNING - timedelta(days=1)).isoformat()]
    args = [*base, "--to", (MORNING + timedelta(hours=2)).isoformat()]
    env = {"TW_POSTGRES__URL": pg_settings.url.get_secret_value()}
    plain = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    as_json = await asyncio.to_thread(CliRunner().invoke, app, [*args, "--json"], env=env)
    assert plain.exit_code == 0 and as_json.exit_code == 0, plain.output + as_json.output
    fire = next(line for line in plain.output.splitlines() if " fire " in line)
    assert entity in fire and "(history)" in fire
    rows = json.loads(as_json.output)
    assert [r["baseline_history"] for r in rows if r["kind"] == "fire"] == [True]


def _versioned(e: ScoredEvent, version: str) -> ScoredEvent:
    versioned: ScoredEvent = e.model_copy(update={"sentiment": e.sentiment.model_copy(update={"version": version})})
    return versioned


async def test_a_new_entitys_first_burst_fires_against_the_streams_history(
    service_settings: Callable[..., Any], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """A company just added, whose first news is a burst of bad headlines: no history of
    its own, so it is judged against the whole stream's week (a model version of its own
    here, so that only this test's news is that stream)."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    version, entity = f"v-{unique}", f"NEW{unique}"
    rule_id = await add_rule(
        sessions, f"new-{unique}", entity, window_s=900, min_volume=5, abs_threshold=0.6, z_threshold=1.5
    )
    earlier = MORNING - timedelta(days=2)  # the stream's history began more than a day before midnight
    stream = [
        _versioned(_event(f"OTHER{unique}", i, earlier + i * 5 * MINUTE, i % 4 == 0, f"markets {i}"), version)
        for i in range(12 * 12)
    ]
    burst = [
        _versioned(_event(entity, 1_000 + k, MORNING + k * MINUTE, True, f"{entity} hit by fraud probe {k}"), version)
        for k in range(8)
    ]
    await store_batch(sessions, stream + burst)
    span = (earlier, MORNING + 2 * 60 * MINUTE)
    kinds, alerts, events = await _live_and_backtest(settings, sessions, rule_id, entity, version, span)
    assert kinds == ["fire"] and len(alerts) == 1
    alert = alerts[0]
    assert MORNING < alert.episode <= MORNING + 5 * MINUTE  # on the fifth headline (min_volume 5)
    why = alert.explanation
    assert why["baseline_method"] == "stream" and why["history_volume"] == 144
    assert why["baseline_center"] == pytest.approx(37 / 146, abs=1e-4)  # 36 negatives of 144, plus one of each
    assert [e.alert_id for e in events if e.kind == "fire"] == [alert.id]


async def test_a_model_promoted_before_midnight_still_warms_up_the_next_morning(
    service_settings: Callable[..., Any], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """A model version promoted at 23:50: after midnight its stream history is ten minutes
    long, no base for judging an entity with no history (it fired on three headlines at
    00:24 against those minutes); the version needs a whole day behind it."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    version, entity = f"p-{unique}", f"PROMO{unique}"
    rule_id = await add_rule(
        sessions, f"promo-{unique}", entity, window_s=900, min_volume=3, abs_threshold=0.6, z_threshold=1.5
    )
    midnight = MORNING.replace(hour=0)
    stream = [
        _versioned(
            _event(f"OTHERP{unique}", i, midnight - 10 * MINUTE + i * 12 * timedelta(seconds=1), i % 5 == 0, "m"),
            version,
        )
        for i in range(250)
    ]
    burst = [
        _versioned(_event(entity, 1_000 + k, midnight + (20 + k) * MINUTE, True, f"{entity} fraud probe {k}"), version)
        for k in range(5)
    ]
    await store_batch(sessions, stream + burst)
    span = (midnight - timedelta(hours=1), midnight + 2 * 60 * MINUTE)
    kinds, alerts, events = await _live_and_backtest(settings, sessions, rule_id, entity, version, span)
    assert kinds == [] and alerts == [] and events == []


async def test_a_short_history_still_gives_an_entity_without_its_own_the_streams(
    service_settings: Callable[..., Any], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """``TW_ALERTER_HISTORY_S`` of 12 hours, for a model version in service for days: its
    stream's last 12 hours before midnight are the base (the version's age, not the length
    of that history, is what the warm-up asks; it never applied below a day of history)."""
    settings: AlerterSettings = service_settings(AlerterSettings, history_s=43_200)
    version, entity = f"s-{unique}", f"SHORT{unique}"
    rule_id = await add_rule(
        sessions, f"short-{unique}", entity, window_s=900, min_volume=5, abs_threshold=0.6, z_threshold=1.5
    )
    midnight = MORNING.replace(hour=0)
    times = [midnight - timedelta(days=3) + i * 10 * MINUTE for i in range(6 * 12)]  # the version's first news
    times += [midnight - timedelta(hours=11) + i * 5 * MINUTE for i in range(10 * 12)]  # the last evening
    stream = [_versioned(_event(f"OTHERS{unique}", i, t, i % 4 == 0, "m"), version) for i, t in enumerate(times)]
    burst = [
        _versioned(_event(entity, 1_000 + k, MORNING + k * MINUTE, True, f"{entity} fraud probe {k}"), version)
        for k in range(8)
    ]
    await store_batch(sessions, stream + burst)
    span = (midnight - timedelta(days=4), MORNING + 2 * 60 * MINUTE)
    kinds, alerts, events = await _live_and_backtest(settings, sessions, rule_id, entity, version, span)
    assert kinds == ["fire"] and len(alerts) == 1
    why = alerts[0].explanation
    assert why["baseline_method"] == "stream" and why["history_volume"] == 120  # the last evening's only
    assert [e.alert_id for e in events if e.kind == "fire"] == [alerts[0].id]
