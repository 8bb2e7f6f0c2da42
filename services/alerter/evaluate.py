"""Live evaluation: for a (stream, entity, model version) whose buckets changed,
run every matching rule over the minutes since its last evaluation, under a
row lock on the detector state. A key with an open alert that went quiet (no
more data about the entity, or a newly promoted model version took over) for
``quiet_after_s`` of wall-clock time, while the stream's data moved on, is
walked on to the stream's clock by the sweep, so its alert resolves. (Wall
clock too, so a replayed history next to live news is not resolved at once.)

Horizon: a key is evaluated up to its latest minute with data, but never past
the current wall-clock minute, both less the allowed lateness (whole minutes).
The classifier keeps event times up to a few minutes ahead of the wall clock,
and a minute walked past is not evaluated again: walking on to such an event
would pass the minutes before it before their on-time data arrived. Minutes
ahead wait; the key's next commit, or the sweep (which revisits
:attr:`Evaluator.ahead`), evaluates them once their time has come.

Dedup: after an alert commits, Redis gets ``SET NX EX <cooldown>`` on a key of
the deployment (its database), rule, entity, window length and window instance;
a later attempt at the same alert stops at that key once this database holds the
alert (a database recreated under the same name leaves stale keys behind). The
alerts table's unique (rule, entity, episode) key is the backstop, so with Redis
down alerts still flow exactly once (with a warning and the
``tonewatch_alert_dedup_redis_unavailable`` metric).

Cooldown and hysteresis are enforced by the detector state, in data time. A
replay or backtest agrees with live detection only when no minute's data is
stored after live evaluation first reached that minute: with
``TW_ALERTER_ALLOWED_LATENESS_S`` of 60 s or more (rounded up to whole minutes)
and no data later than that (data that arrives in order by minute, say), or
with no lateness and each minute's data stored in one commit, in order.
Otherwise live detection evaluates a minute on its first part (the point:
early alerts) and keeps what it decided: it may fire on a part the complete
minute would not support, and data stored after its minute was evaluated
never counts. Live detection also walks at most ``TW_ALERTER_MAX_STEPS``
minutes per update (older ones are skipped, with a warning).

First sight: a (rule, entity, model version) with no evaluation yet starts at the
first minute (within ``TW_ALERTER_MAX_STEPS`` of the horizon) whose data was stored
after the rule began to cover it (``covered_since``: its creation, its last re-enabling,
or the change of scope that brought the entity in) and that follows every minute whose
data is all older, or at the horizon alone when there is none. Data that arrives for an
existing rule (the demo's backfill, a replayed file) is walked like live news; a rule
created over stored history does not page about spikes that were over before it existed
(its baselines read that history all the same), nor does a rule re-enabled or widened
about spikes from before. A key evaluated before catches up from where it stopped, as
after an alerter outage (up to ``TW_ALERTER_MAX_STEPS`` minutes); re-enabling the rule,
or a scope change that covers the key anew, makes its next evaluation a first sight
again (:func:`services.alerter.repo.update_rule`). So does the watchlist for rules over
a group or every entity: an entity added to it (or made active again) is covered from
then (``entities.watched_since``), one moved into a group by the group's rules from then
(``entities.group_since``; a move keeps it under every-entity rules). The evaluation
starts with the data stored after the later of that and ``covered_since``, and a key last
evaluated before it (the entity left and came back) starts there too, not from its old
cursor. The watchlist's writes leave the detector states alone: the evaluation compares
when the key's state was last saved with the entity's times.

Scope: ``all_entities`` and ``group`` cover the active entities of the watchlist
(``_all``, the whole stream, is no entity): an entity made inactive (``entities.active``
false) is out of their scope as one removed is, and their open alerts about it are
resolved by the sweep (:func:`services.alerter.repo.resolve_uncovered`); a rule naming
its ``entities`` covers those keys, watched or not, active or not."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter import store
from services.alerter.config import AlerterSettings
from services.alerter.detect import MINUTE, DetectorConfig, Observation, minutes, observe, skipped, step
from services.alerter.explain import explain
from shared.config import PostgresSettings
from shared.db.models import AlertRule, TrendMinute
from shared.entities import ALL
from shared.metrics import metrics

log = logging.getLogger(__name__)


def alert_id(rule_id: int, entity: str, window_end: datetime) -> str:
    raw = f"{rule_id}|{entity}|{window_end.isoformat()}"
    return "al-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


def deployment(postgres: PostgresSettings) -> str:
    """What tells this deployment's alerts apart in a Redis other deployments share: the
    database they live in (host, port and name; never the password). Rule ids and
    minutes repeat across databases, so without it one deployment's alert suppressed
    another's."""
    url = urlsplit(postgres.url.get_secret_value())
    return url.netloc.rpartition("@")[2] + url.path


def detector_config(rule: AlertRule, settings: AlerterSettings) -> DetectorConfig:
    return DetectorConfig(
        window_s=rule.window_s,
        min_volume=rule.min_volume,
        abs_threshold=rule.abs_threshold,
        z_threshold=rule.z_threshold,
        baseline=rule.baseline,  # type: ignore[arg-type]
        cooldown_s=rule.cooldown_s,
        resolve_after_s=rule.resolve_after_s,
        baseline_windows=settings.baseline_windows,
        min_baseline_windows=settings.min_baseline_windows,
        ewma_alpha=settings.ewma_alpha,
        std_floor=settings.std_floor,
        history_s=settings.history_s,
    )


def in_scope(rule: AlertRule, stream: str, entity: str, groups: dict[str, str | None]) -> bool:
    """Whether ``rule`` evaluates ``entity`` on ``stream``; ``groups`` is the watchlist
    (every active entity's key, with its group: :func:`store.entity_groups`). A rule naming
    its entities covers those keys (``_all``, the whole stream, among them); a group or
    ``all_entities`` covers only watched entities, so an entity that leaves the watchlist
    (removed, or made inactive) leaves those rules too."""
    if rule.stream != stream:
        return False
    scope = rule.scope or {}
    if scope.get("entities"):
        return entity in scope["entities"]
    if entity == ALL or entity not in groups:
        return False
    if scope.get("group"):
        return bool(groups[entity] == scope["group"])
    return bool(scope.get("all_entities"))


def behind(latest: datetime, clock: datetime, cfg: DetectorConfig) -> bool:
    """The key's last data is more than a window plus ``resolve_after_s`` behind the
    stream's clock (its data time): on empty minutes up to there the alert resolves."""
    return (clock - latest).total_seconds() > cfg.window_s + cfg.resolve_after_s


@dataclass
class Snapshot:
    """What every key of one evaluation pass shares: the enabled rules, the entities'
    groups, and each stream's clock (read on first use)."""

    rules: list[AlertRule]
    groups: dict[str, str | None]
    clocks: dict[str, datetime | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    kind: str  # "fire" | "resolve"
    alert_id: str
    rule: AlertRule


def observation_json(obs: Observation, cfg: DetectorConfig) -> dict[str, Any]:
    """What an alert stores of the observation that fired it, with the rule's thresholds
    as they were then (a rule edited since no longer says why it crossed the line).

    ``baseline_mean`` is the baseline's centre, the median under a median/MAD baseline:
    the name is kept for stored alerts and their readers, ``baseline_center`` and
    ``baseline_method`` say which it is. ``baseline_std_used`` is the spread the z-score
    divided by: the baseline's, or ``std_floor`` where that was smaller. A cold start
    (:func:`services.alerter.detect.history_baseline`) has ``baseline_method`` "history",
    with that history's volume and start; its z takes half a message off the share."""
    center, std = round(obs.baseline.mean, 4), round(obs.baseline.std, 4)
    start = obs.baseline.history_start
    history = {"history_volume": obs.baseline.history_volume, "history_start": start.isoformat()} if start else {}
    method = cfg.baseline if start is None else "stream" if obs.baseline.stream_prior else "history"
    return history | {
        "share": round(obs.share, 4),
        "volume": obs.volume,
        "negatives": obs.negatives,
        "baseline_mean": center,
        "baseline_std": std,
        "baseline_windows": obs.baseline.windows,
        "z": round(obs.z, 3) if obs.z is not None else None,
        "window_start": obs.window_start.isoformat(),
        "window_end": obs.window_end.isoformat(),
        "baseline_method": method,
        "baseline_center": center,
        "baseline_std_used": round(max(obs.baseline.std, cfg.std_floor), 4),
        "min_volume": cfg.min_volume,
        "abs_threshold": cfg.abs_threshold,
        "z_threshold": cfg.z_threshold,
    }


class Evaluator:
    def __init__(self, settings: AlerterSettings, sessions: async_sessionmaker[AsyncSession], redis: Redis) -> None:
        self.settings = settings
        self.sessions = sessions
        self.redis = redis
        self.namespace = deployment(settings.postgres)
        # keys (stream, entity, model version) with data ahead of the wall clock: their
        # minutes come due without new data, so the sweep revisits them
        self.ahead: set[tuple[str, str, str]] = set()

    def _key(self, rule: AlertRule, entity: str, aid: str) -> str:
        return f"tw:alert:{self.namespace}:{rule.id}:{entity}:{rule.window_s}:{aid}"

    async def _redis_seen(self, rule: AlertRule, entity: str, aid: str) -> bool:
        """Fast path: True when Redis already knows this alert fired (then no second insert)."""
        try:
            return bool(await self.redis.exists(self._key(rule, entity, aid)))
        except (RedisError, OSError) as exc:
            self._redis_down(exc)
            return False

    async def _fired_here(self, s: AsyncSession, rule: AlertRule, entity: str, aid: str) -> bool:
        """True when the alert already fired in this database (nothing to insert). The Redis
        key alone is not enough: one left by a database since recreated under the same name
        would make the state claim an alert that does not exist here."""
        return await self._redis_seen(rule, entity, aid) and await store.alert_exists(s, aid)

    async def _redis_mark(self, rule: AlertRule, entity: str, aid: str) -> None:
        """After the commit: ``SET NX EX cooldown`` so repeats are dropped before touching PostgreSQL."""
        try:
            await self.redis.set(self._key(rule, entity, aid), "1", nx=True, ex=max(rule.cooldown_s, 60))
        except (RedisError, OSError) as exc:
            self._redis_down(exc)

    def _redis_down(self, exc: BaseException) -> None:
        metrics().dedup_fallbacks.inc()
        log.warning("Redis unavailable for alert dedup (%s); relying on the PostgreSQL unique key", exc)

    async def snapshot(self) -> Snapshot:
        """The enabled rules and the entities' groups, read once for a pass over many keys
        (a sweep visits every recently updated key and every key with an open alert)."""
        async with self.sessions() as s:
            return Snapshot(await store.load_rules(s), await store.entity_groups(s))

    async def evaluate(self, stream: str, entity: str, version: str, snap: Snapshot | None = None) -> list[Change]:
        snap = snap or await self.snapshot()
        rules = [r for r in snap.rules if in_scope(r, stream, entity, snap.groups)]
        if not rules:
            return []
        async with self.sessions() as s:
            latest = await store.latest_minute(s, stream, entity, version)
            if stream not in snap.clocks:
                snap.clocks[stream] = await store.stream_clock(s, stream)
            clock = snap.clocks[stream]
        if latest is None:
            return []
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        if latest > now:
            self.ahead.add((stream, entity, version))
        else:
            self.ahead.discard((stream, entity, version))
        # a watermark: minutes newer than this may still receive late (or on-time) data, so wait for it
        lateness = timedelta(minutes=-(-self.settings.allowed_lateness_s // 60))
        latest = min(latest, now) - lateness
        clock = min(clock, now) - lateness if clock is not None else None
        changes: list[Change] = []
        for rule in rules:
            changes += await self._evaluate_rule(rule, stream, entity, version, latest, clock)
        return changes

    async def _evaluate_rule(
        self, rule: AlertRule, stream: str, entity: str, version: str, latest: datetime, clock: datetime | None
    ) -> list[Change]:
        changes: list[Change] = []
        resolved: list[tuple[str, float, int]] = []
        async with self.sessions.begin() as s:
            locked = await store.lock_state_saved(s, rule.id, entity, version)
            current = await self._current(s, rule, stream, entity) if locked is not None else None
            if locked is None or current is None:
                return []
            (state, saved), (rule, joined) = locked, current
            cfg = detector_config(rule, self.settings)
            if state.last_eval is not None and joined is not None and saved < joined:
                # the entity joined the rule's coverage (added to the watchlist again, made
                # active again, moved into the group) after the key was last evaluated: its
                # cursor dates from before it left, so this is a first sight again
                state = replace(state, last_eval=None)
            if state.open_alert is not None and clock is not None and behind(latest, clock, cfg):
                updated = await store.last_update(s, stream, entity, version)
                if updated is None or (datetime.now(UTC) - updated).total_seconds() >= self.settings.quiet_after_s:
                    # the key went quiet (no more news about the entity, or a new model
                    # version took over) while the stream went on: its empty minutes up to
                    # the stream's clock are walked, so the open alert resolves
                    latest = clock
            low = latest - (self.settings.max_steps - 1) * MINUTE
            if state.last_eval is None:
                # first sight: the minutes stored since the rule covers the key, walked like
                # live news; older history only as baseline (no paging about spikes long over)
                since = rule.covered_since if joined is None else max(rule.covered_since, joined)
                start = await _first_sight(s, since, stream, entity, version, low, latest)
                counts = await store.load_windows(s, stream, entity, version, start, latest, cfg)
            else:
                start = state.last_eval
                counts = await store.load_windows(s, stream, entity, version, max(start, low), latest, cfg)
            gap = skipped(start, latest, self.settings.max_steps)
            if gap is not None:
                # minutes without data hold no spike: a sparse entity's quiet weekend is no
                # warning (the cursor's own minute, ``last_eval``, was evaluated before)
                unseen = gap[0] + MINUTE if state.last_eval == gap[0] else gap[0]
                if await store.has_data(s, stream, entity, version, unseen, gap[1]):
                    self._warn_skipped(rule, entity, version, gap)
            # an entity with no history of its own starts against the stream's (the cold start)
            prior = await store.load_prior(s, stream, version, max(start, low), latest, cfg) if entity != ALL else None
            for t in minutes(start, latest, self.settings.max_steps):
                obs = observe(counts, t, cfg, prior)
                aid = alert_id(rule.id, entity, obs.window_end)
                new_state, action = step(state, obs, cfg, aid)
                if action and action.kind == "fire":
                    # either way the alert exists here afterwards, as the new state claims
                    if not await self._fired_here(s, rule, entity, aid) and await self._fire(
                        s, rule, stream, entity, version, obs, aid
                    ):
                        changes.append(Change("fire", aid, rule))
                elif action and action.kind == "resolve" and state.open_alert:
                    if await store.resolve_alert(s, state.open_alert, datetime.now(UTC)):
                        resolved.append((state.open_alert, obs.share, obs.volume))
                    changes.append(Change("resolve", state.open_alert, rule))
                state = new_state
            await store.save_state(s, rule.id, entity, version, state)
        for aid, share, volume in resolved:  # once committed, and only what this pass resolved
            log.info(
                "alert %s resolved: rule %s entity %s share %.2f volume %d, no longer holding for %ds",
                aid,
                rule.name,
                entity,
                share,
                volume,
                rule.resolve_after_s,
            )
        for change in changes:
            if change.kind == "fire":
                await self._redis_mark(rule, entity, change.alert_id)
        return changes

    async def _current(
        self, s: AsyncSession, rule: AlertRule, stream: str, entity: str
    ) -> tuple[AlertRule, datetime | None] | None:
        """The rule as committed now, if it is enabled and still covers the entity; locked
        (with the entity's watchlist entry) until the evaluation commits. The pass read its
        rules and groups before: a rule disabled, deleted or re-scoped since, or an entity
        moved out of its group, would otherwise be evaluated once more from that copy,
        firing an alert nothing resolves. Taken after the state, in the order
        :func:`repo.lock_rule` takes them, so a change in flight either waits for this
        evaluation (and then resolves what it fired) or commits before it (and is seen here).

        With the rule: since when the watchlist puts the entity in the rule's scope, for a
        rule over a group (the later of the entity's ``watched_since`` and ``group_since``)
        or every entity (``watched_since``: a group move keeps it covered); ``None`` for a
        rule naming its entities, which covers them watched or not."""
        current = await store.share_rule(s, rule.id)
        if current is None or not current.enabled:
            return None
        scope = current.scope or {}
        if not (scope.get("group") or scope.get("all_entities")) or scope.get("entities"):
            return (current, None) if in_scope(current, stream, entity, {}) else None
        watched = await store.share_watched(s, entity)
        if watched is None or not in_scope(current, stream, entity, {entity: watched.group}):
            return None
        joined = max(watched.watched_since, watched.group_since) if scope.get("group") else watched.watched_since
        return current, joined

    def _warn_skipped(self, rule: AlertRule, entity: str, version: str, gap: tuple[datetime, datetime]) -> None:
        """One update reached further than TW_ALERTER_MAX_STEPS minutes (a bulk history
        ingest, a long alerter outage): the oldest minutes are never evaluated, so a spike
        in them never alerts. Say which, so an operator can backtest them."""
        log.warning(
            "rule %s entity %s model %s: minutes %s to %s skipped, more than TW_ALERTER_MAX_STEPS (%d) minutes "
            "behind; spikes in them do not alert (a backtest over them shows what would have)",
            rule.name,
            entity,
            version,
            gap[0].isoformat(),
            gap[1].isoformat(),
            self.settings.max_steps,
        )
        metrics().alert_minutes_skipped.inc(int((gap[1] - gap[0]) / MINUTE) + 1)

    async def _fire(
        self, s: AsyncSession, rule: AlertRule, stream: str, entity: str, version: str, obs: Observation, aid: str
    ) -> bool:
        base_start = obs.baseline.history_start or obs.window_start - timedelta(
            seconds=rule.window_s * self.settings.baseline_windows
        )
        explanation = observation_json(obs, detector_config(rule, self.settings)) | await explain(
            s,
            stream=stream,
            entity=entity,
            version=version,
            window=(obs.window_start, obs.window_end),
            base=(base_start, obs.window_start),
            top_messages=self.settings.top_messages,
            top_terms=self.settings.top_terms,
        )
        explanation["model_version"] = version
        inserted = await store.insert_alert(
            s,
            {
                "id": aid,
                "rule_id": rule.id,
                "entity": entity,
                "stream": stream,
                "episode": obs.window_end,
                "status": "open",
                "severity": rule.severity,
                "window_start": obs.window_start,
                "window_end": obs.window_end,
                "fired_at": datetime.now(UTC),
                "explanation": explanation,
                "model_version": version,
                "notified": False,
            },
        )
        if inserted:
            log.info(
                "alert %s fired: rule %s entity %s share %.2f z %s volume %d",
                aid,
                rule.name,
                entity,
                obs.share,
                explanation["z"],
                obs.volume,
            )
        return inserted


async def _first_sight(
    s: AsyncSession, since: datetime, stream: str, entity: str, version: str, low: datetime, latest: datetime
) -> datetime:
    """Where the key's first evaluation under a rule starts: the first minute from ``low``
    to ``latest`` whose data was stored after ``since``, when the rule began to cover the key
    (its ``covered_since``: created, enabled again, or widened; or, later, when the
    watchlist brought the entity into a group or all-entities scope; all on the database's
    clock) and that comes after every minute whose data is all older; ``latest`` when
    there is none. So a late event added to an old minute does not reopen the history
    before it."""
    new = TrendMinute.updated_at >= since
    q = select(func.min(TrendMinute.bucket).filter(new), func.max(TrendMinute.bucket).filter(~new)).where(
        TrendMinute.stream == stream,
        TrendMinute.entity == entity,
        TrendMinute.model_version == version,
        TrendMinute.bucket >= low,
        TrendMinute.bucket <= latest,
    )
    first_new, last_old = (await s.execute(q)).one()
    if first_new is None:
        return latest
    start: datetime = first_new if last_old is None else max(first_new, last_old + MINUTE)
    return min(start, latest)
