"""False alerts on noise, and surges caught, for the shipped watchlist rule and tuned variants.

Simulated, in the detector alone (``services.alerter.detect``, the code live detection and
backtests run): an entity with news from 07:00 to 22:00 at about ``rate`` headlines an
hour (0 to 2 x rate, uniform), each negative with probability 0.25, for 30 days: pure
noise, so every alert is a false one. Then a surge: 8 negative headlines in 8 minutes
after such a history, ending in a quiet night or in the middle of a day, over 200 histories.

    python bench/alerter_noise.py [--days 30] [--trials 200]

Prints one row per rule variant, side by side, and the cold start's effect (the surge
after a quiet night, with ``TW_ALERTER_HISTORY_S`` on and off).
"""

from __future__ import annotations

import argparse
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.alerter.detect import MINUTE, CumulativeCounts, DetectorConfig, State, minutes, observe, step
from services.alerter.rules import DEFAULT_RULES

T0 = datetime(2026, 1, 5, tzinfo=UTC)
Counts = dict[datetime, tuple[int, int]]


def shipped() -> DetectorConfig:
    rule = next(r for r in DEFAULT_RULES if r.name == "watchlist-negative-spike")
    return DetectorConfig(
        window_s=rule.window_s,
        min_volume=rule.min_volume,
        abs_threshold=rule.abs_threshold,
        z_threshold=rule.z_threshold,
        baseline=rule.baseline,
        cooldown_s=rule.cooldown_s,
        resolve_after_s=rule.resolve_after_s,
        history_s=7 * 86_400,
    )


def noise(rng: random.Random, days: int, rate: int) -> Counts:
    out: Counts = {}
    for d in range(days):
        for h in range(7, 22):
            for _ in range(rng.randint(0, 2 * rate)):
                t = T0 + timedelta(days=d, hours=h, minutes=rng.randint(0, 59))
                c, n = out.get(t, (0, 0))
                out[t] = (c + 1, n + (rng.random() < 0.25))
    return out


def fires(counts: Counts, cfg: DetectorConfig, first: datetime, last: datetime) -> int:
    cum, state, n = CumulativeCounts(counts), State(), 0
    for t in minutes(first, last, 10**7):
        state, action = step(state, observe(cum, t, cfg), cfg, "a")
        n += action is not None and action.kind == "fire"
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    base = shipped()
    variants = {
        f"shipped (min_volume {base.min_volume}, z {base.z_threshold})": base,
        "min_volume 3, z 1.5 (until 2026-12)": replace(base, min_volume=3, z_threshold=1.5),
        "min_volume 3, z 2.5": replace(base, min_volume=3, z_threshold=2.5),
        "min_volume 5, z 2.5": replace(base, min_volume=5, z_threshold=2.5),
    }
    end = T0 + timedelta(days=args.days)
    print(f"false alerts in {args.days} days of noise (news 07:00-22:00, a quarter negative), per entity")
    print(f"{'rule':36} {'~1/h':>6} {'~3/h':>6} {'~10/h':>6}")
    histories = {rate: noise(random.Random(rate), args.days, rate) for rate in (1, 3, 10)}
    for name, cfg in variants.items():
        row = [fires(histories[rate], cfg, T0 + timedelta(hours=4), end) for rate in (1, 3, 10)]
        print(f"{name:36} {row[0]:>6} {row[1]:>6} {row[2]:>6}")
    print(f"\na surge of 8 negative headlines in 8 minutes after 2 days at ~3/h, caught of {args.trials}")
    print(f"{'rule':36} {'07:00 after a quiet night':>26} {'15:00':>6}")
    for name, cfg in [*variants.items(), ("shipped, TW_ALERTER_HISTORY_S=0", replace(base, history_s=0))]:
        caught = []
        for at_hour in (7, 15):
            n = 0
            for seed in range(args.trials):
                counts = noise(random.Random(1000 + seed), 3, 3)  # cut at the surge
                start = T0 + timedelta(days=2, hours=at_hour)
                counts = {t: v for t, v in counts.items() if t < start}
                counts.update({start + k * MINUTE: (1, 1) for k in range(8)})
                n += fires(counts, cfg, start, start + 30 * MINUTE) > 0
            caught.append(n)
        print(f"{name:36} {caught[0]:>26} {caught[1]:>6}")


if __name__ == "__main__":
    main()
