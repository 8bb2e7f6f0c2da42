"""Backtest: replay stored minute buckets through the same detector code and
list the alerts a rule would have fired (and resolved).

A backtest covers at most :data:`MAX_SPAN` (92 days): each entity and model version is
walked minute by minute, so the span bounds its time (about 3 s per key for 92 days)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerter import store
from services.alerter.config import AlerterSettings
from services.alerter.detect import HOUR, MINUTE, Observation, Prior, State, minutes, observe, step
from services.alerter.evaluate import alert_id, detector_config, in_scope
from shared.db.models import AlertRule, TrendMinute
from shared.entities import ALL

MAX_SPAN = timedelta(days=92)
"""The longest backtest, a quarter: longer ones are run in parts."""
FIRST, LAST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
PLOTTED_KEYS = 6
"""The chart draws this many entity and model version pairs, so only theirs are kept."""


class RangeRefused(ValueError):
    """The backtest's start and end are out of order, too far apart, or so close to the
    calendar's ends that the rule's baseline history or last window cannot be counted."""


def check_range(start: datetime, end: datetime, lookback: timedelta = timedelta(0)) -> tuple[datetime, datetime]:
    """``start`` and ``end`` (aware) in UTC, or :class:`RangeRefused`: ``end`` not before
    ``start``, at most :data:`MAX_SPAN` apart, with ``lookback`` (the rule's baseline
    history) before ``start`` and a minute after ``end`` left in the calendar (years 1 to
    9999): the walk counts there, and would overflow."""
    try:
        utc_start, utc_end = start.astimezone(UTC), end.astimezone(UTC)
    except OverflowError:
        raise RangeRefused(f"{start.isoformat()} or {end.isoformat()} is outside years 1 to 9999 in UTC") from None
    if utc_end < utc_start:
        raise RangeRefused(f"the end ({end.isoformat()}) is before the start ({start.isoformat()})")
    if utc_end - utc_start > MAX_SPAN:
        raise RangeRefused(
            f"{start.isoformat()} to {end.isoformat()} is longer than a backtest may cover "
            f"({MAX_SPAN.days} days): run it in parts"
        )
    if utc_start - FIRST < lookback or LAST - utc_end < MINUTE:
        raise RangeRefused(
            f"{start.isoformat()} to {end.isoformat()} is too near the calendar's ends (years 1 to 9999) to count "
            f"the rule's baseline history ({lookback.days} days before the start) and the minute after the end"
        )
    return utc_start, utc_end


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
    *,
    keep_series: bool = False,
) -> tuple[list[BacktestEvent], dict[tuple[str, str], list[Observation]]]:
    """The rule's fire and resolve events from ``start`` to ``end`` (see :func:`check_range`,
    :class:`RangeRefused` otherwise). ``keep_series``: also every observation of the first
    :data:`PLOTTED_KEYS` keys with data, for :func:`plot` (else the series are empty: they
    cost about 50 MB per key for 92 days)."""
    cfg = detector_config(rule, settings)
    # the baseline's windows, and the cold start's history before them (an hour more: it
    # starts on the hour, see detect.history_start; the stream's is read apart, load_prior)
    history = timedelta(seconds=cfg.window_s * (cfg.baseline_windows + 1))
    if cfg.history_s:
        history = max(history, timedelta(seconds=cfg.window_s + cfg.history_s) + HOUR)
    # (and the stream's history behind each day: from the day's midnight, a day more at most)
    start, end = check_range(start, end, history + timedelta(days=1))
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
    priors: dict[str, Prior] = {}
    for ent, version in sorted(keys):
        if (entity and ent != entity) or not in_scope(rule, rule.stream, ent, groups):
            continue
        counts = await store.load_counts(session, rule.stream, ent, version, start - history, end)
        first = min((b for b in counts if b >= start), default=None)
        if first is None:
            continue
        state = State()
        # as live detection: an entity with no history of its own starts against the stream's
        # (the same for every entity of a model version: read once, over the whole range)
        if ent != ALL and version not in priors:
            priors[version] = await store.load_prior(session, rule.stream, version, start, end, cfg)
        prior = priors.get(version) if ent != ALL else None
        kept = series.setdefault((ent, version), []) if keep_series and len(series) < PLOTTED_KEYS else None
        # past the key's last data plus a window, nothing more can fire, only an open alert resolve
        quiet = max(counts) + timedelta(seconds=cfg.window_s)
        steps = int((end - first) / MINUTE) + 1
        for t in minutes(first, end.replace(second=0, microsecond=0), steps):
            if kept is None and state.open_alert is None and t > quiet:
                break
            obs = observe(counts, t, cfg, prior)
            if kept is not None:
                kept.append(obs)
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


class PlotUnavailable(RuntimeError):
    """matplotlib, which :func:`plot` draws with, is not installed (it is the ``plot`` extra)."""


def check_plot() -> None:
    """:class:`PlotUnavailable` unless :func:`plot` can import matplotlib: checked before a
    backtest runs, so that a missing chart library does not cost the backtest's work."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise PlotUnavailable("--plot needs matplotlib: pip install -e '.[plot]' in the tonewatch checkout") from exc


class PlotPathRefused(ValueError):
    """A ``--plot`` path that does not end in ``.png``."""


def check_plot_path(path: Path) -> None:
    """:class:`PlotPathRefused` unless ``path`` ends in ``.png`` (any case). Checked before a backtest
    runs: matplotlib takes the format from the suffix, so an unknown one failed only after the
    backtest, and a path without one was written with ``.png`` added."""
    if path.suffix.lower() != ".png":
        raise PlotPathRefused(f"--plot writes a PNG chart: give a path ending in .png, not {str(path)!r}")


def plot(series: dict[tuple[str, str], list[Observation]], events: list[BacktestEvent], path: Path) -> None:
    """A PNG chart at exactly ``path`` (matplotlib: see :func:`check_plot`, :func:`check_plot_path`);
    OSError when it cannot be written."""
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
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
