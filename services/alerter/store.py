"""Alerter storage: rules, bucket counts, detector state (locked per rule and
entity), alerts with the (rule, entity, episode) unique backstop."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import func, literal, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerter.detect import (
    Counts,
    CumulativeCounts,
    DetectorConfig,
    Prior,
    RolledCounts,
    State,
    has_cold_start,
    prior_days,
    prior_start,
    spans,
)
from shared.db.models import Alert, AlertRule, AlertState, Entity, TrendHour, TrendMinute
from shared.entities import ALL


async def load_rules(session: AsyncSession) -> list[AlertRule]:
    return list((await session.execute(select(AlertRule).where(AlertRule.enabled.is_(True)))).scalars())


async def entity_groups(session: AsyncSession) -> dict[str, str | None]:
    """The watchlist as the rules see it: each active entity's key, with its group. An
    inactive entity (``entities.active`` false) is off the watchlist, as for the classifier,
    which no longer tags it: rules over a group or every entity do not cover it, and the
    sweep resolves their open alerts about it (:func:`services.alerter.repo.resolve_uncovered`)."""
    q = select(Entity.key, Entity.group).where(Entity.active.is_(True))
    return {k: g for k, g in await session.execute(q)}


async def latest_minute(session: AsyncSession, stream: str, entity: str, version: str) -> datetime | None:
    q = select(func.max(TrendMinute.bucket)).where(
        TrendMinute.stream == stream, TrendMinute.entity == entity, TrendMinute.model_version == version
    )
    result: datetime | None = (await session.execute(q)).scalar()
    return result


async def has_data(
    session: AsyncSession, stream: str, entity: str, version: str, first: datetime, last: datetime
) -> bool:
    """Whether the key has data in any minute from ``first`` to ``last``."""
    q = select(literal(1)).where(
        TrendMinute.stream == stream,
        TrendMinute.entity == entity,
        TrendMinute.model_version == version,
        TrendMinute.bucket >= first,
        TrendMinute.bucket <= last,
    )
    return (await session.execute(q.limit(1))).first() is not None


async def stream_clock(session: AsyncSession, stream: str) -> datetime | None:
    """The stream's latest minute with data, whatever the entity or model version (every
    event counts towards ``_all``): how far the stream's data time has got."""
    q = select(func.max(TrendMinute.bucket)).where(TrendMinute.stream == stream, TrendMinute.entity == ALL)
    result: datetime | None = (await session.execute(q)).scalar()
    return result


async def last_update(session: AsyncSession, stream: str, entity: str, version: str) -> datetime | None:
    """When the key's buckets last changed (wall clock)."""
    q = select(func.max(TrendHour.updated_at)).where(
        TrendHour.stream == stream, TrendHour.entity == entity, TrendHour.model_version == version
    )
    result: datetime | None = (await session.execute(q)).scalar()
    return result


async def open_alert_keys(session: AsyncSession) -> set[tuple[str, str, str]]:
    """(stream, entity, model version) of every alert not yet resolved: the sweep visits
    them even when they get no new data, so they can resolve."""
    q = select(Alert.stream, Alert.entity, Alert.model_version).where(Alert.status != "resolved").distinct()
    return {(a, b, c) for a, b, c in await session.execute(q)}


async def load_counts(
    session: AsyncSession, stream: str, entity: str, version: str, start: datetime, end: datetime
) -> Counts:
    q = select(TrendMinute.bucket, TrendMinute.count, TrendMinute.negative).where(
        TrendMinute.stream == stream,
        TrendMinute.entity == entity,
        TrendMinute.model_version == version,
        TrendMinute.bucket >= start,
        TrendMinute.bucket <= end,
    )
    return CumulativeCounts({b: (int(c), int(n)) for b, c, n in await session.execute(q)})


# One statement, so the minutes and the hours come from one snapshot (an aggregator
# commit in between would count its events in some windows and not in others); fixed,
# with array parameters, so it is prepared once whatever the number of spans.
_WINDOWS = text(
    """
    SELECT m.bucket, m.count, m.negative, false AS hourly FROM trend_minute AS m
    JOIN unnest(CAST(:minute_from AS timestamptz[]), CAST(:minute_to AS timestamptz[])) AS s(lo, hi)
        ON m.bucket >= s.lo AND m.bucket < s.hi
    WHERE m.stream = :stream AND m.entity = :entity AND m.model_version = :version
    UNION ALL
    SELECT h.bucket, h.count, h.negative, true FROM trend_hour AS h
    JOIN unnest(CAST(:hour_from AS timestamptz[]), CAST(:hour_to AS timestamptz[])) AS s(lo, hi)
        ON h.bucket >= s.lo AND h.bucket < s.hi
    WHERE h.stream = :stream AND h.entity = :entity AND h.model_version = :version
    """
)


async def load_windows(
    session: AsyncSession, stream: str, entity: str, version: str, first: datetime, last: datetime, cfg: DetectorConfig
) -> Counts:
    """The counts :func:`detect.observe` needs at every minute from ``first`` to ``last``
    (and every minute of those with data): the hours its windows' edges fall in minute
    by minute from ``trend_minute``, the hours between from ``trend_hour``, which the
    aggregator keeps as their exact sum (see :func:`detect.spans`)."""
    minute_spans, hour_spans = spans(first, last, cfg)
    if not minute_spans:
        return CumulativeCounts({})
    params = {
        "stream": stream,
        "entity": entity,
        "version": version,
        "minute_from": [a for a, _ in minute_spans],
        "minute_to": [b for _, b in minute_spans],
        "hour_from": [a for a, _ in hour_spans],
        "hour_to": [b for _, b in hour_spans],
    }
    minutes: dict[datetime, tuple[int, int]] = {}
    hours: dict[datetime, tuple[int, int]] = {}
    for bucket, count, negative, hourly in await session.execute(_WINDOWS, params):
        (hours if hourly else minutes)[bucket] = (int(count), int(negative))
    # every minute (short windows, long walks): plain running totals, the faster lookup
    return RolledCounts(minutes, hours) if hour_spans else CumulativeCounts(minutes)


# The stream's totals behind each day (detect.stream_baseline): the hours from each day's
# prior_start to its midnight, one row per day, and whether the model version's stream has
# data from more than a day before that midnight (whatever the history's length); fixed,
# with array parameters.
_PRIOR = text(
    """
    SELECT s.day, COALESCE(sum(h.count), 0), COALESCE(sum(h.negative), 0),
        EXISTS (
            SELECT 1 FROM trend_hour AS old
            WHERE old.stream = :stream AND old.entity = :entity AND old.model_version = :version
                AND old.bucket < s.hi - interval '1 day'
        )
    FROM unnest(CAST(:days AS date[]), CAST(:lo AS timestamptz[]), CAST(:hi AS timestamptz[])) AS s(day, lo, hi)
    LEFT JOIN trend_hour AS h
        ON h.stream = :stream AND h.entity = :entity AND h.model_version = :version
        AND h.bucket >= s.lo AND h.bucket < s.hi
    GROUP BY s.day, s.hi
    """
)


async def load_prior(
    session: AsyncSession, stream: str, version: str, first: datetime, last: datetime, cfg: DetectorConfig
) -> Prior:
    """The whole stream's (``_all``) totals over ``history_s`` before each day that
    :func:`detect.observe` reads from ``first`` to ``last`` (:func:`detect.prior_days`): the
    cold start of an entity with no history of its own. Empty when there is no cold start.

    A day before which the model version's stream has less than a day of data (a model
    promoted at 23:50: ten minutes of its news) has none: the warm-up after a promotion
    lasts until the version has a whole day behind it (its first hour with data began more
    than a day before the midnight), not until the first midnight."""
    days = prior_days(first, last, cfg) if has_cold_start(cfg) else []
    if not days:
        return {}
    params = {
        "stream": stream,
        "entity": ALL,
        "version": version,
        "days": days,
        "lo": [prior_start(d, cfg) for d in days],
        "hi": [datetime.combine(d, time(), UTC) for d in days],
    }
    return {day: (int(c), int(n)) for day, c, n, aged in await session.execute(_PRIOR, params) if aged}


def _to_json(state: State) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(state).items()}


def _from_json(data: dict[str, Any]) -> State:
    def dt(v: Any) -> datetime | None:
        return datetime.fromisoformat(v) if v else None

    def num(v: Any) -> float | None:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    return State(
        data.get("open_alert"),
        dt(data.get("fired_at")),
        dt(data.get("below_since")),
        dt(data.get("last_eval")),
        num(data.get("fired_mean")),  # absent in states stored before it was kept
        num(data.get("fired_std")),
        data.get("fired_history") is True,
    )


async def lock_state(session: AsyncSession, rule_id: int, entity: str, version: str) -> State | None:
    """The detector state, locked FOR UPDATE until the transaction ends; ``None`` when the
    rule no longer exists (deleted since the caller read it: a state for it would break
    the foreign key)."""
    locked = await lock_state_saved(session, rule_id, entity, version)
    return None if locked is None else locked[0]


async def lock_state_saved(
    session: AsyncSession, rule_id: int, entity: str, version: str
) -> tuple[State, datetime] | None:
    """:func:`lock_state`, with when the state was last saved (its ``updated_at``, the
    database's clock; a new state: now)."""
    fresh = select(AlertRule.id, literal(entity), literal(version), literal({}, JSONB)).where(AlertRule.id == rule_id)
    columns = ["rule_id", "entity", "model_version", "state"]
    await session.execute(insert(AlertState).from_select(columns, fresh).on_conflict_do_nothing())
    q = (
        select(AlertState.state, AlertState.updated_at)
        .where(AlertState.rule_id == rule_id, AlertState.entity == entity, AlertState.model_version == version)
        .with_for_update()
    )
    row = (await session.execute(q)).one_or_none()
    return None if row is None else (_from_json(row[0]), row[1])


async def share_rule(session: AsyncSession, rule_id: int) -> AlertRule | None:
    """The rule as committed now (``None``: deleted), locked FOR SHARE until the
    transaction ends: no change to it commits before this transaction does."""
    q = select(AlertRule).where(AlertRule.id == rule_id).with_for_update(read=True)
    rule: AlertRule | None = (await session.execute(q.execution_options(populate_existing=True))).scalar()
    return rule


@dataclass(frozen=True)
class Watched:
    """An entity's watchlist entry: its group, and since when it is watched and in that
    group (the database's clock; see :mod:`shared.db.watchlist`)."""

    group: str | None
    watched_since: datetime
    group_since: datetime


async def share_watched(session: AsyncSession, entity: str) -> Watched | None:
    """The entity's watchlist entry as committed now (``None``: not watched, or inactive),
    its row locked FOR SHARE until the transaction ends: no membership change (an addition,
    a group move, a removal, a deactivation) commits before the evaluation does."""
    q = (
        select(Entity.group, Entity.watched_since, Entity.group_since)
        .where(Entity.key == entity, Entity.active.is_(True))
        .with_for_update(read=True)
    )
    row = (await session.execute(q)).one_or_none()
    return None if row is None else Watched(row[0], row[1], row[2])


async def watched_entries(session: AsyncSession, entities: Iterable[str]) -> dict[str, Watched]:
    """The watchlist entries of those of ``entities`` that are watched (active), unlocked."""
    q = select(Entity.key, Entity.group, Entity.watched_since, Entity.group_since).where(
        Entity.key.in_(sorted(set(entities))), Entity.active.is_(True)
    )
    return {k: Watched(g, w, gs) for k, g, w, gs in await session.execute(q)}


async def save_state(session: AsyncSession, rule_id: int, entity: str, version: str, state: State) -> None:
    await session.execute(
        update(AlertState)
        .where(AlertState.rule_id == rule_id, AlertState.entity == entity, AlertState.model_version == version)
        # the time of this write, not of the transaction's start: an evaluation that saw a
        # membership change committed (see share_watched) saves after that change's time
        .values(state=_to_json(state), updated_at=func.clock_timestamp())
    )


async def insert_alert(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert unless (rule, entity, episode) exists: the backstop against duplicates."""
    stmt = insert(Alert).values(**values).on_conflict_do_nothing().returning(Alert.id)
    return (await session.execute(stmt)).scalar() is not None


async def alert_exists(session: AsyncSession, alert_id: str) -> bool:
    q = select(Alert.id).where(Alert.id == alert_id)
    return (await session.execute(q)).scalar() is not None


async def resolve_alert(session: AsyncSession, alert_id: str, at: datetime) -> bool:
    """Resolve the alert; False when it was resolved already (an operator's ``alerts resolve``)."""
    done = await session.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.status != "resolved")
        .values(status="resolved", resolved_at=at)
        .returning(Alert.id)
    )
    return done.first() is not None
