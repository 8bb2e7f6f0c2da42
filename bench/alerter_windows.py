"""Detector cost per evaluated minute for long rule windows: ``observe`` over plain minute
counts (the peer, the code before) next to running totals (``CumulativeCounts``, what the
alerter and the backtest load now), in one run, on the same synthetic history (one data
minute in two, over the span a seven-day rule's baseline needs). Every observation is
checked equal on both sides.

With ``--postgres URL`` (a server, e.g. ``postgresql+asyncpg://tonewatch:tonewatch@127.0.0.1:15432``)
it also times loading one key's counts and observing, in a scratch database it creates,
migrates and drops: every minute with data over the span a seven-day rule's baseline needs
(about 131,000 minute rows), all minutes (``store.load_counts``, the code before) next to
hourly totals with the minutes at the windows' edges (``store.load_windows``), for one
minute evaluated (a sweep) and for a first look (``TW_ALERTER_MAX_STEPS`` minutes), medians
of ``--repeats`` runs; every observation is checked equal on both sides.

Usage: ``python bench/alerter_windows.py [--minutes 60] [--postgres URL [--repeats 5]]``.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services.alerter.detect import MINUTE, Counts, CumulativeCounts, DetectorConfig, observe  # noqa: E402

LOAD_WINDOWS = (300, 900, 3_600, 86_400, 7 * 86_400)
FIRST_LOOK = 1_440  # TW_ALERTER_MAX_STEPS' default


def config(window_s: int) -> DetectorConfig:
    return DetectorConfig(
        window_s=window_s,
        min_volume=10,
        abs_threshold=0.5,
        z_threshold=2.0,
        baseline="ewma",
        cooldown_s=3_600,
        resolve_after_s=600,
    )


async def _fill(url: str, base: datetime, span: int) -> None:
    """Every minute of ``span`` from ``base`` with data, and the hours' exact sums."""
    import asyncpg

    rng = random.Random(11)
    minutes: list[tuple[Any, ...]] = []
    hours: dict[datetime, tuple[int, int]] = {}
    for i in range(span):
        t = base + i * MINUTE
        c = rng.randint(1, 9)
        n = rng.randint(0, c)
        minutes.append(("news", "BENCH", t, "v1", c, n, c - n, 0, 0.0, 0.0))
        h = t.replace(minute=0)
        hc, hn = hours.get(h, (0, 0))
        hours[h] = (hc + c, hn + n)
    columns = ["stream", "entity", "bucket", "model_version", "count", "negative"]
    columns += ["neutral", "positive", "score_sum", "confidence_sum"]
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table("trend_minute", records=minutes, columns=columns)
        rows = [("news", "BENCH", h, "v1", c, n, c - n, 0, 0.0, 0.0) for h, (c, n) in hours.items()]
        await conn.copy_records_to_table("trend_hour", records=rows, columns=columns)
        await conn.execute("ANALYZE trend_minute; ANALYZE trend_hour")
    finally:
        await conn.close()


async def _timed(load: Callable[[], Awaitable[Counts]], ats: list[datetime], cfg: DetectorConfig) -> tuple[float, Any]:
    t0 = time.perf_counter()
    counts = await load()
    observed = [observe(counts, at, cfg) for at in ats]
    return time.perf_counter() - t0, (len(counts), observed)


async def _measure(sessions: Any, cfg: DetectorConfig, first: datetime, last: datetime, repeats: int) -> dict[str, Any]:
    from services.alerter import store

    history = timedelta(seconds=cfg.window_s * (cfg.baseline_windows + 1))
    ats = [first + k * MINUTE for k in range(int((last - first) / MINUTE) + 1)]
    times: dict[str, list[float]] = {"before": [], "after": []}
    seen: dict[str, Any] = {}
    for _ in range(repeats):
        async with sessions() as s:
            loads: dict[str, Callable[[], Awaitable[Counts]]] = {
                "before": partial(store.load_counts, s, "news", "BENCH", "v1", first - history, last),
                "after": partial(store.load_windows, s, "news", "BENCH", "v1", first, last, cfg),
            }
            for way, load in loads.items():
                elapsed, seen[way] = await _timed(load, ats, cfg)
                times[way].append(elapsed)
    assert seen["before"][1] == seen["after"][1]
    return {
        "window_s": cfg.window_s,
        "evaluated_minutes": len(ats),
        "minute_rows_before": seen["before"][0],
        "minute_rows_after": seen["after"][0],
        "before_ms": statistics.median(times["before"]) * 1000,
        "after_ms": statistics.median(times["after"]) * 1000,
    }


async def _compare_loads(server: str, repeats: int) -> list[dict[str, Any]]:
    import asyncpg
    from pydantic import SecretStr

    from shared.config import PostgresSettings
    from shared.db.migrate import upgrade
    from shared.db.session import make_engine, make_sessionmaker

    name = f"tw_bench_{uuid.uuid4().hex[:8]}"
    plain = server.replace("postgresql+asyncpg", "postgresql")
    admin = await asyncpg.connect(plain + "/tonewatch")
    await admin.execute(f'CREATE DATABASE "{name}"')
    engine = None
    try:
        settings = PostgresSettings(url=SecretStr(f"{server}/{name}"))
        await asyncio.to_thread(upgrade, settings)
        base = datetime(2026, 1, 1, tzinfo=UTC)
        span = 7 * 1440 * 13 + FIRST_LOOK
        await _fill(f"{plain}/{name}", base, span)
        engine = make_engine(settings)
        sessions = make_sessionmaker(engine)
        last = base + (span - 1) * MINUTE
        rows = []
        for window_s in LOAD_WINDOWS:
            for label, steps in (("sweep", 1), ("first look", FIRST_LOOK)):
                row = await _measure(sessions, config(window_s), last - (steps - 1) * MINUTE, last, repeats)
                rows.append(row)
                print(
                    f"{window_s // 60:>6} min {label:>10} {row['minute_rows_before']:>12,}"
                    f" {row['minute_rows_after']:>11,} {row['before_ms']:>12.1f} {row['after_ms']:>11.1f}"
                )
        return rows
    finally:
        if engine is not None:
            await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=60, help="minutes evaluated per window length")
    parser.add_argument("--postgres", help="also time loading from PostgreSQL on this server (a scratch database)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per loading measurement (median)")
    args = parser.parse_args()
    rng = random.Random(7)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    span = 7 * 1440 * 13 + args.minutes  # a seven-day window and its twelve baseline windows
    plain = {base + i * MINUTE: (6, rng.randint(0, 2)) for i in range(0, span, 2)}
    start = time.perf_counter()
    cumulative = CumulativeCounts(plain)
    build_s = time.perf_counter() - start
    rows = []
    print(f"{len(plain):,} data minutes; running totals built in {build_s:.3f} s")
    print(
        f"{'window':>8} {'plain ms/min':>13} {'totals ms/min':>14} {'1,440 minutes at that rate (plain / totals)':>44}"
    )
    for window_s in (3_600, 86_400, 7 * 86_400):
        cfg = config(window_s)
        ats = [base + (span - args.minutes + k) * MINUTE for k in range(args.minutes)]
        t0 = time.perf_counter()
        slow = [observe(plain, at, cfg) for at in ats]
        t1 = time.perf_counter()
        fast = [observe(cumulative, at, cfg) for at in ats]
        t2 = time.perf_counter()
        assert slow == fast
        row = {
            "window_s": window_s,
            "plain_ms_per_minute": (t1 - t0) * 1000 / args.minutes,
            "totals_ms_per_minute": (t2 - t1) * 1000 / args.minutes,
        }
        rows.append(row)
        print(
            f"{window_s // 3600:>6} h {row['plain_ms_per_minute']:>13.3f} {row['totals_ms_per_minute']:>14.4f}"
            f"{row['plain_ms_per_minute'] * 1.44:>33.1f} s / {row['totals_ms_per_minute'] * 1.44:.3f} s"
        )
    result: dict[str, Any] = {"data_minutes": len(plain), "build_s": build_s, "rows": rows}
    if args.postgres:
        print("loading one key and observing, medians (ms); minute rows loaded before / after")
        print(f"{'window':>10} {'evaluated':>10} {'rows before':>12} {'rows after':>11}", end="")
        print(f" {'before ms':>12} {'after ms':>11}")
        result["load"] = asyncio.run(_compare_loads(args.postgres, args.repeats))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
