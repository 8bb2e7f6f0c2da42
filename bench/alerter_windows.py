"""Detector cost per evaluated minute for long rule windows: ``observe`` over plain minute
counts (the peer, the code before) next to running totals (``CumulativeCounts``, what the
alerter and the backtest load now), in one run, on the same synthetic history (one data
minute in two, over the span a seven-day rule's baseline needs). Every observation is
checked equal on both sides.

Usage: ``python bench/alerter_windows.py [--minutes 60]``. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services.alerter.detect import MINUTE, CumulativeCounts, DetectorConfig, observe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=60, help="minutes evaluated per window length")
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
        cfg = DetectorConfig(
            window_s=window_s,
            min_volume=10,
            abs_threshold=0.5,
            z_threshold=2.0,
            baseline="ewma",
            cooldown_s=3_600,
            resolve_after_s=600,
        )
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
    print(json.dumps({"data_minutes": len(plain), "build_s": build_s, "rows": rows}))


if __name__ == "__main__":
    main()
