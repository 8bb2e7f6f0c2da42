"""Backtest: replay stored minute buckets through the same detector code and
list the alerts a rule would have fired (and resolved)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerter import store
from services.alerter.config import AlerterSettings
from services.alerter.detect import MINUTE, Observation, State, minutes, observe, step
from services.alerter.evaluate import alert_id, detector_config, in_scope
from shared.db.models import AlertRule, TrendMinute


@dataclass(frozen=True)
class BacktestEvent:
    kind: str
    rule: str
    entity: str
    model_version: str
    observation: Observation
    alert_id: str


async def backtest(
    session: AsyncSession,
    rule: AlertRule,
    settings: AlerterSettings,
    start: datetime,
    end: datetime,
    entity: str | None = None,
) -> tuple[list[BacktestEvent], dict[tuple[str, str], list[Observation]]]:
    cfg = detector_config(rule, settings)
    groups = await store.entity_groups(session)
    keys = (
        await session.execute(
            select(TrendMinute.entity, TrendMinute.model_version)
            .where(TrendMinute.stream == rule.stream, TrendMinute.bucket >= start, TrendMinute.bucket <= end)
            .distinct()
        )
    ).all()
    events: list[BacktestEvent] = []
    series: dict[tuple[str, str], list[Observation]] = {}
    history = timedelta(seconds=cfg.window_s * (cfg.baseline_windows + 1))
    for ent, version in sorted(keys):
        if (entity and ent != entity) or not in_scope(rule, rule.stream, ent, groups):
            continue
        counts = await store.load_counts(session, rule.stream, ent, version, start - history, end)
        first = min((b for b in counts if b >= start), default=None)
        if first is None:
            continue
        state = State()
        obs_list = series.setdefault((ent, version), [])
        steps = int((end - first) / MINUTE) + 1
        for t in minutes(first, end.replace(second=0, microsecond=0), steps):
            obs = observe(counts, t, cfg)
            obs_list.append(obs)
            aid = alert_id(rule.id, ent, obs.window_end)
            new_state, action = step(state, obs, cfg, aid)
            if action is not None:
                events.append(
                    BacktestEvent(
                        action.kind,
                        rule.name,
                        ent,
                        version,
                        obs,
                        aid if action.kind == "fire" else (state.open_alert or ""),
                    )
                )
            state = new_state
    return events, series


def plot(series: dict[tuple[str, str], list[Observation]], events: list[BacktestEvent], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k, v in series.items() if v][:6]
    fig, axes = plt.subplots(len(keys) or 1, 1, figsize=(11, 2.6 * max(1, len(keys))), squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=False):
        obs = series[key]
        xs = [o.at for o in obs]
        ax.plot(xs, [o.share for o in obs], label="negative share", color="#c0392b")
        ax.plot(xs, [o.baseline.mean for o in obs], label="baseline", color="#7f8c8d", linestyle="--")
        for e in events:
            if (e.entity, e.model_version) == key:
                ax.axvline(e.observation.at, color="#e67e22" if e.kind == "fire" else "#27ae60", alpha=0.7)
        ax.set_title(f"{key[0]} (model {key[1]})", fontsize=9)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
