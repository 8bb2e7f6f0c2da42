"""What the alerter loads for a rule, on the real database: hourly totals for the hours
inside its windows and minutes only in the hours its windows' edges fall in give exactly
the observations (window sums, baseline, z, breach) and detector steps that every minute
gave. A seven-day rule reloaded 91 days of minutes (131,000 rows with data in every
minute) per key at every evaluation: about 0.6 s per key and pass."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alert_scenario import add_rule, scored
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import services.alerter.evaluate as evaluate_module
from services.aggregator.persist import store_batch
from services.alerter import store
from services.alerter.backtest import backtest
from services.alerter.config import AlerterSettings
from services.alerter.detect import MINUTE, Counts, CumulativeCounts, DetectorConfig, Prior, State, observe, step
from services.alerter.evaluate import Evaluator
from shared.db.models import Alert, AlertRule
from shared.events import ScoredEvent

pytestmark = pytest.mark.integration

END = datetime(2026, 2, 1, 17, 42, tzinfo=UTC)  # the last minute with data, off the hour
SPAN = timedelta(days=92)
WINDOWS = (300, 900, 3_600, 5_400, 86_400, 7 * 86_400)


def _event(entity: str, i: int, t: datetime, negative: bool) -> ScoredEvent:
    """About ``entity`` alone (stamped in the past, it stays out of the stream's ``_all``)."""
    e = scored(entity, i, t, negative, f"{entity} {'slips' if negative else 'holds'} {i}")
    alone: ScoredEvent = e.model_copy(update={"entities": [entity]})
    return alone


def _random_history(entity: str, seed: int) -> list[ScoredEvent]:
    """92 days of random events up to :data:`END`, denser around every seven-day and
    five-minute window edge of the last day, plus the same times under another model
    version and another entity (neither may count)."""
    rng = random.Random(seed)
    times = [END - rng.random() * SPAN for _ in range(5_000)]
    for j in range(15):
        edge = END - j * timedelta(days=7)
        times += [edge - rng.random() * timedelta(hours=26) for _ in range(80)]
    times += [END - rng.random() * timedelta(hours=3) for _ in range(400)]
    times = [t.replace(microsecond=0) for t in times if END - SPAN < t < END + MINUTE] + [END]
    events = [_event(entity, i, t, rng.random() < 0.3) for i, t in enumerate(times)]
    v2 = [
        e.model_copy(update={"id": f"v2-{e.id}", "sentiment": e.sentiment.model_copy(update={"version": "v2"})})
        for e in events[::3]
    ]
    other = [e.model_copy(update={"id": f"o-{e.id}", "entities": [f"{entity}-other"]}) for e in events[::3]]
    return events + v2 + other


def _per_minute(events: list[ScoredEvent], entity: str) -> dict[datetime, tuple[int, int]]:
    """The reference: the events summed per minute in Python (what the old loading read)."""
    out: dict[datetime, tuple[int, int]] = {}
    for e in events:
        if entity in e.entities and e.sentiment.version == "v1":
            t = e.event_time.replace(second=0, microsecond=0)
            c, n = out.get(t, (0, 0))
            out[t] = (c + 1, n + (e.sentiment.label == "negative"))
    return out


def _config(window_s: int) -> DetectorConfig:
    return DetectorConfig(
        window_s=window_s,
        min_volume=3,
        abs_threshold=0.3,
        z_threshold=0.5,
        baseline="ewma",
        cooldown_s=600,
        resolve_after_s=300,
    )


def _minutes(first: datetime, last: datetime) -> Iterator[datetime]:
    t = first
    while t <= last:
        yield t
        t += MINUTE


def _walk(counts: Counts, first: datetime, last: datetime, cfg: DetectorConfig) -> list[Any]:
    """Every observation and the detector's state and action after it."""
    state, out = State(), []
    for t in _minutes(first, last):
        obs = observe(counts, t, cfg)
        state, action = step(state, obs, cfg, f"a-{t.isoformat()}")
        out.append((obs, state, action))
    return out


async def _store(sessions: async_sessionmaker[AsyncSession], events: list[ScoredEvent]) -> None:
    for k in range(0, len(events), 2_000):
        await store_batch(sessions, events[k : k + 2_000])


RANGES = {
    "a sweep (one minute)": (END, END),
    "a sweep on the hour": (END - 42 * MINUTE, END - 42 * MINUTE),
    "a few minutes across an hour": (END - 50 * MINUTE, END - 30 * MINUTE),
    "a first look (1,440 minutes)": (END - 1_439 * MINUTE, END),
}


async def test_hourly_totals_and_edge_minutes_give_exactly_the_windows_and_detection_of_every_minute(
    sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    entity = f"WIN{unique}"
    events = _random_history(entity, 3)
    await _store(sessions, events)
    reference = CumulativeCounts(_per_minute(events, entity))
    assert len(reference) > 5_000
    for window_s in WINDOWS:
        cfg = _config(window_s)
        history = timedelta(seconds=window_s * (cfg.baseline_windows + 1))
        for name, (first, last) in RANGES.items():
            async with sessions() as s:
                new = await store.load_windows(s, "news", entity, "v1", first, last, cfg)
                old = await store.load_counts(s, "news", entity, "v1", first - history, last)
            expected = _walk(reference, first, last, cfg)
            assert _walk(new, first, last, cfg) == expected, (window_s, name)
            assert _walk(old, first, last, cfg) == expected, (window_s, name)
            # a first look starts at the first minute with data it evaluates
            assert {t for t in old if first <= t <= last} == {t for t in new if first <= t <= last}
            if window_s >= 86_400 and name.startswith("a sweep"):
                assert len(new) <= (cfg.baseline_windows + 2) * 60 < len(old), (window_s, name, len(new), len(old))
        # something fires or breaches somewhere, so the detection compared is not all quiet
        assert any(obs.breach for obs, _, _ in _walk(reference, END - 1_439 * MINUTE, END, cfg)), window_s


def _calm_then_spike(entity: str) -> list[ScoredEvent]:
    """An event every 20 minutes for 92 days (one in six negative), then 300 negative
    events in one hour, five hours before :data:`END`."""
    events, t, i = [], END - SPAN, 0
    while t <= END:
        events.append(_event(entity, i, t, i % 6 == 0))
        t, i = t + 20 * MINUTE, i + 1
    spike = END - timedelta(hours=5)
    events += [_event(entity, 10_000 + k, spike + k * 12 * timedelta(seconds=1), True) for k in range(300)]
    return events


async def test_a_seven_day_rule_reads_hours_not_three_months_of_minutes_and_fires_as_its_backtest(
    service_settings: Callable[..., Any],
    sessions: async_sessionmaker[AsyncSession],
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Live evaluation of a seven-day rule: each later evaluation loads the minutes of at
    most ``baseline_windows + 2`` hours (it loaded every minute of 91 days), and the alert
    it fires is the one the backtest (which walks every minute) fires."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"WEEK{unique}"
    rule_id = await add_rule(
        sessions, f"week-{unique}", entity, window_s=7 * 86_400, abs_threshold=0.4, z_threshold=2.0
    )
    await _store(sessions, _calm_then_spike(entity))
    loaded: list[int] = []

    def counted(counts: Counts, at: datetime, cfg: DetectorConfig, prior: Prior | None = None) -> Any:
        loaded.append(len(counts))
        return observe(counts, at, cfg, prior)

    monkeypatch.setattr(evaluate_module, "observe", counted)
    redis = Redis.from_url(settings.redis.url.get_secret_value())
    try:
        evaluator = Evaluator(settings, sessions, redis)
        changes = await evaluator.evaluate("news", entity, "v1")
        assert [c.kind for c in changes if c.rule.id == rule_id] == ["fire"]
        for k in range(1, 4):  # later updates: a sweep each
            await store_batch(sessions, [_event(entity, 20_000 + k, END + k * 7 * MINUTE, False)])
            loaded.clear()
            assert [c for c in await evaluator.evaluate("news", entity, "v1") if c.rule.id == rule_id] == []
            assert loaded and max(loaded) <= (settings.baseline_windows + 2) * 60, max(loaded)
    finally:
        await redis.aclose()
    async with sessions() as s:
        live = list((await s.execute(select(Alert.id).where(Alert.rule_id == rule_id))).scalars())
        rule = await s.get(AlertRule, rule_id)
        assert rule is not None
        start = END - (settings.max_steps - 1) * MINUTE
        events, _ = await backtest(s, rule, settings, start, END + 21 * MINUTE, entity=entity)
    assert len(live) == 1 and [e.alert_id for e in events if e.kind == "fire"] == live
