"""The dashboard's four reads without the indexes of migration 0010 (the peer) next to
with them, in one run, on the same data: the latest trend bucket
(``query.latest_trend_bucket``), the watchlist's window of buckets
(``routes_entities._series``, ``/v1/entities``' default window after the latest bucket),
its open alerts (``routes_entities.open_alert_counts``) and the alert list's first page
(``list_alerts``' statement: ``alerts_query()`` newest first, a page of its default limit
and one more), all streams, minute buckets, as the API sends them. Both sides run the
current statements (the trend reads stream by stream): the peer is the schema before 0010,
not the statements before it.

In a scratch database it creates on ``--postgres`` (a server, not a database; default the
local stack's), migrates to head and drops at the end, even on error: the 0010 indexes
are dropped, ``trend_minute`` is filled with ``--trend-rows`` rows (two streams, 120
entities of Zipf-like activity and the ``_all`` rows, minute by minute back from the
newest, busier by day than by night, a model upgrade a week ago; ``trend_hour`` stays
empty: none of these reads it), ``alerts`` with ``--alerts`` alerts over a year (300 not
resolved, mostly recent), then VACUUM ANALYZE. Each read is timed without the indexes,
then the indexes are created as the models declare them (the migration's definitions),
ANALYZE, and each read is timed with them: the median of ``--runs`` runs after one
uncounted warm-up, each on a fresh session already holding its pooled connection (the
checkout and its pre-ping are not timed; the statement, the driver and the ORM are).
Every read's result is checked equal on both sides.

Usage: ``python bench/dashboard_reads.py [--postgres URL] [--trend-rows 1000000]
[--alerts 300000] [--runs 7]`` (the defaults: about 40 s on two cores, most of it the fill).
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import math
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy.engine import Dialect  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402
from sqlalchemy.schema import CreateIndex  # noqa: E402

from services.alerter.evaluate import alert_id  # noqa: E402
from services.api.alert_feed import alerts_query  # noqa: E402
from services.api.deps import Deps  # noqa: E402
from services.api.query import STREAMS, Window, latest_trend_bucket, make_window  # noqa: E402
from services.api.routes_alerts import NEWEST_FIRST, list_alerts  # noqa: E402
from services.api.routes_entities import _series, list_entities, open_alert_counts  # noqa: E402
from shared.db.models import Base  # noqa: E402
from shared.entities import ALL  # noqa: E402

DEFAULT_SERVER = "postgresql+asyncpg://tonewatch:tonewatch@127.0.0.1:15432"
INDEXES_0010 = (
    "ix_trend_minute_stream_bucket",
    "ix_trend_hour_stream_bucket",
    "ix_alerts_fired_at_id",
    "ix_alerts_unresolved",
)
ENTITIES = [f"ent{i:03d}" for i in range(120)]
ACTIVITY = {"news": 3.0, "chat": 1.5}  # entity i has data in a stream's minute with chance min(1, a / (i + 1))
UNRESOLVED = 300
ALERT_DAYS = 365
MINUTE = timedelta(minutes=1)
END = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # the newest minute bucket
POINTS = int(inspect.signature(list_entities).parameters["points"].default)
PAGE = int(inspect.signature(list_alerts).parameters["limit"].default)

Read = Callable[[AsyncSession], Awaitable[Any]]


def _trend_records(target: int, rng: random.Random) -> list[tuple[Any, ...]]:
    """``target`` trend_minute rows, minute by minute back from :data:`END`."""
    records: list[tuple[Any, ...]] = []
    t = END
    while True:
        daylight = 0.55 + 0.45 * math.sin(math.pi * ((t.hour + t.minute / 60 - 6) % 24) / 12)
        version = "v2" if END - t < timedelta(days=7) else "v1"
        for stream, activity in ACTIVITY.items():
            total = negative_total = 0
            for i, entity in enumerate(ENTITIES):
                if rng.random() < min(1.0, daylight * activity / (i + 1)):
                    count = 1 + int(rng.expovariate(1 / (40 * daylight / (i + 1) ** 0.5)))
                    negative = int(count * rng.uniform(0.05, 0.4))
                    records.append(_bucket_row(stream, entity, t, version, count, negative, rng))
                    total, negative_total = total + count, negative_total + negative
            extra = rng.randint(0, 20)  # messages naming no entity
            records.append(_bucket_row(stream, ALL, t, version, total + extra, negative_total, rng))
            if len(records) >= target:
                return records[:target]
        t -= MINUTE


def _bucket_row(
    stream: str, entity: str, t: datetime, version: str, count: int, negative: int, rng: random.Random
) -> tuple[Any, ...]:
    positive = int((count - negative) * rng.uniform(0.2, 0.6))
    neutral = count - negative - positive
    return (stream, entity, t, version, count, negative, neutral, positive, count * 0.1, count * 0.8)


def _explanations(rng: random.Random) -> list[str]:
    """A pool of explanations of about the alerter's shape (observation, messages, terms)."""
    words = "outage refund delay broken lawsuit recall fee crash support angry price sued".split()
    pool = []
    for _ in range(64):
        start = END - timedelta(minutes=rng.randint(0, 10_000))
        messages = [
            {
                "id": f"msg-{rng.getrandbits(48):012x}",
                "text": " ".join(rng.choices(words, k=14)),
                "negative_prob": round(rng.uniform(0.7, 1.0), 4),
                "event_time": start.isoformat(),
            }
            for _ in range(2)
        ]
        pool.append(
            json.dumps(
                {
                    "share": round(rng.uniform(0.3, 0.9), 4),
                    "volume": rng.randint(10, 500),
                    "negatives": rng.randint(5, 200),
                    "baseline_mean": round(rng.uniform(0.05, 0.3), 4),
                    "baseline_std": round(rng.uniform(0.01, 0.1), 4),
                    "baseline_windows": 12,
                    "z": round(rng.uniform(3, 9), 3),
                    "window_start": start.isoformat(),
                    "window_end": (start + timedelta(minutes=5)).isoformat(),
                    "messages": messages,
                    "top_terms": rng.sample(words, 6),
                    "model_version": "v2",
                }
            )
        )
    return pool


def _alert_records(n: int, rules: list[tuple[int, str, int, str]], rng: random.Random) -> list[tuple[Any, ...]]:
    """``n`` alerts over :data:`ALERT_DAYS`, oldest first (as inserted); :data:`UNRESOLVED`
    not resolved: most among the newest, a few old ones acknowledged and forgotten."""
    weights = [1 / (i + 1) for i in range(len(ENTITIES))] + [2.0]
    entities = rng.choices([*ENTITIES, ALL], weights=weights, k=n)
    explanations = _explanations(rng)
    seen: set[tuple[int, str, datetime]] = set()
    drafts = []
    for entity in entities:
        while True:
            rule_id, stream, window_s, severity = rng.choice(rules)
            window_end = END - timedelta(minutes=rng.randint(0, ALERT_DAYS * 1440))
            if (rule_id, entity, window_end) not in seen:
                seen.add((rule_id, entity, window_end))
                break
        drafts.append((window_end, rule_id, stream, window_s, severity, entity))
    drafts.sort()
    newest = range(max(0, n - 2_000), n)
    open_at = set(rng.sample(newest, min(len(newest), UNRESOLVED * 9 // 10)))
    open_at |= set(rng.sample(range(n), min(n, UNRESOLVED - len(open_at))))
    records = []
    for i, (window_end, rule_id, stream, window_s, severity, entity) in enumerate(drafts):
        fired_at = window_end + timedelta(seconds=rng.uniform(1, 90))
        acked: datetime | None = fired_at + timedelta(minutes=rng.uniform(1, 120))
        resolved: datetime | None = None
        if i not in open_at:
            status, resolved = "resolved", fired_at + timedelta(seconds=window_s + rng.uniform(600, 7_200))
            acked = acked if rng.random() < 0.5 else None
        elif i in newest and rng.random() < 2 / 3:
            status, acked = "open", None
        else:
            status = "acknowledged"
        records.append(
            (
                alert_id(rule_id, entity, window_end),
                rule_id,
                entity,
                stream,
                window_end,
                status,
                severity,
                window_end - timedelta(seconds=window_s),
                window_end,
                fired_at,
                acked,
                resolved,
                rng.choice(explanations),
                "v2" if END - window_end < timedelta(days=7) else "v1",
                True,
                status,
            )
        )
    return records


ALERT_COLUMNS = ["id", "rule_id", "entity", "stream", "episode", "status", "severity", "window_start"]
ALERT_COLUMNS += ["window_end", "fired_at", "acknowledged_at", "resolved_at", "explanation", "model_version"]
ALERT_COLUMNS += ["notified", "announced_status"]
TREND_COLUMNS = ["stream", "entity", "bucket", "model_version", "count", "negative", "neutral", "positive"]
TREND_COLUMNS += ["score_sum", "confidence_sum"]


async def _fill(url: str, trend_rows: int, alerts: int) -> dict[str, Any]:
    import asyncpg

    rng = random.Random(10)
    trends = _trend_records(trend_rows, rng)
    conn = await asyncpg.connect(url)
    try:
        rules = []
        for k in range(12):
            stream, window_s, severity = STREAMS[k % 2], (300, 900, 3_600)[k % 3], ("warning", "critical")[k // 6]
            rule_id = await conn.fetchval(
                "INSERT INTO alert_rules (name, stream, scope, window_s, min_volume, abs_threshold, z_threshold,"
                " baseline, severity, cooldown_s, resolve_after_s, channels)"
                " VALUES ($1, $2, '{}', $3, 10, 0.5, 3, 'ewma', $4, 3600, 900, '[]') RETURNING id",
                f"bench-rule-{k}",
                stream,
                window_s,
                severity,
            )
            rules.append((rule_id, stream, window_s, severity))
        await conn.copy_records_to_table("trend_minute", records=trends, columns=TREND_COLUMNS)
        await conn.copy_records_to_table("alerts", records=_alert_records(alerts, rules, rng), columns=ALERT_COLUMNS)
        await conn.execute("VACUUM ANALYZE trend_minute, trend_hour, alerts, alert_rules")
        unresolved = await conn.fetchval("SELECT count(*) FROM alerts WHERE status <> 'resolved'")
        first = await conn.fetchval("SELECT min(bucket) FROM trend_minute")
    finally:
        await conn.close()
    return {"trend_rows": len(trends), "trend_days": (END - first) / timedelta(days=1), "unresolved": unresolved}


def _reads(window: Window) -> dict[str, Read]:
    async def latest(session: AsyncSession) -> Any:
        return await latest_trend_bucket(session, None, "minute")

    async def watchlist(session: AsyncSession) -> Any:
        return await _series(cast(Deps, SimpleNamespace(sessions=lambda: session)), None, window)

    async def open_alerts(session: AsyncSession) -> Any:
        return await open_alert_counts(session, None)

    async def alert_list(session: AsyncSession) -> Any:
        rows = (await session.execute(alerts_query().order_by(*NEWEST_FIRST).limit(PAGE + 1))).all()
        return [(alert.id, name) for alert, name in rows]

    return {
        "latest bucket": latest,
        f"watchlist window ({POINTS} min)": watchlist,
        "open alerts": open_alerts,
        f"alert list ({PAGE}+1 rows)": alert_list,
    }


async def _side(sessions: Any, reads: dict[str, Read], runs: int) -> tuple[dict[str, float], dict[str, Any]]:
    """{read: median ms}, {read: its result}."""
    medians, results = {}, {}
    for name, read in reads.items():
        times = []
        for run in range(runs + 1):  # run 0 warms the caches and the connection's statements
            async with sessions() as session:
                await session.connection()
                t0 = time.perf_counter()
                results[name] = await read(session)
                elapsed = time.perf_counter() - t0
            if run:
                times.append(elapsed)
        medians[name] = statistics.median(times) * 1000
    return medians, results


def _create_indexes(dialect: Dialect) -> list[str]:
    """The 0010 indexes as the models declare them (the migration creates the same)."""
    declared = {str(ix.name): ix for table in Base.metadata.tables.values() for ix in table.indexes}
    return [str(CreateIndex(declared[name]).compile(dialect=dialect)) for name in INDEXES_0010]


async def _compare(server: str, trend_rows: int, alerts: int, runs: int) -> dict[str, Any]:
    import asyncpg
    from pydantic import SecretStr

    from shared.config import PostgresSettings
    from shared.db.migrate import upgrade
    from shared.db.session import make_engine, make_sessionmaker

    name = f"tw_bench_{uuid.uuid4().hex[:8]}"
    plain = server.replace("postgresql+asyncpg", "postgresql")
    admin = await asyncpg.connect(plain + "/tonewatch")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        settings = PostgresSettings(url=SecretStr(f"{server}/{name}"))
        await asyncio.to_thread(upgrade, settings)
        conn = await asyncpg.connect(f"{plain}/{name}")
        try:
            await conn.execute("".join(f"DROP INDEX {ix};" for ix in INDEXES_0010))
            t0 = time.perf_counter()
            data = await _fill(f"{plain}/{name}", trend_rows, alerts)
            data["fill_s"] = time.perf_counter() - t0
            print(
                f"{data['trend_rows']:,} trend_minute rows over {data['trend_days']:.1f} days, {alerts:,} alerts"
                f" ({data['unresolved']} not resolved), filled and vacuumed in {data['fill_s']:.0f} s"
            )
            window = make_window(None, None, "minute", default_points=POINTS, anchor=END)
            reads = _reads(window)
            medians: dict[str, dict[str, float]] = {}
            results: dict[str, dict[str, Any]] = {}
            for side in ("without", "with"):
                engine = make_engine(settings)
                if side == "with":
                    ddl = _create_indexes(engine.dialect)
                    await conn.execute(";".join(ddl) + "; ANALYZE trend_minute, trend_hour, alerts")
                try:
                    medians[side], results[side] = await _side(make_sessionmaker(engine), reads, runs)
                finally:
                    await engine.dispose()
        finally:
            await conn.close()
        assert results["without"] == results["with"], "a read's result differs with the indexes"
        print(f"{'read':<32} {'without (ms)':>13} {'with (ms)':>10}")
        for read in reads:
            print(f"{read:<32} {medians['without'][read]:>13.2f} {medians['with'][read]:>10.2f}")
        rows = [{"read": r, "without_ms": medians["without"][r], "with_ms": medians["with"][r]} for r in reads]
        return {**data, "alerts": alerts, "runs": runs, "rows": rows}
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default=DEFAULT_SERVER, help="server for the scratch database (no database)")
    parser.add_argument("--trend-rows", type=int, default=1_000_000, help="trend_minute rows")
    parser.add_argument("--alerts", type=int, default=300_000, help=f"alerts ({UNRESOLVED} not resolved)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per read and side (median)")
    args = parser.parse_args()
    if min(args.trend_rows, args.alerts, args.runs) < 1:
        parser.error("--trend-rows, --alerts and --runs must be at least 1")
    print(f"--trend-rows {args.trend_rows:,} --alerts {args.alerts:,} --runs {args.runs}; medians, ms")
    result = asyncio.run(_compare(args.postgres, args.trend_rows, args.alerts, args.runs))
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
