"""Print the rollout numbers of issue 11: (a) the strategy x step table of AWS AppConfig's
predefined strategies and two canonical custom ones; (b) bucketing statistics for 10,000
subjects (fixed seed): share per weight, deviation, monotonicity violations, two-key overlap.

    PYTHONPATH=functions python scripts/rollout_stats.py [--subjects 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random

from configpipe.release.strategies import APPCONFIG_STRATEGIES, parse_strategy
from configpipe.rollout.bucketing import bucket, threshold

CUSTOM = (
    "AppConfig.Linear25PercentOver10MinutesBake5Minutes",
    "AppConfig.Exponential5PercentOver15MinutesBake5Minutes",
)
WEIGHTS = (1, 5, 10, 25, 50, 90)


def strategy_table() -> None:
    print("(a) strategies: step, time after start, percent; then the final bake")
    for name in (*APPCONFIG_STRATEGIES, *CUSTOM):
        strategy = parse_strategy(name)
        print(f"\n{name}  (weighted={strategy.weighted})")
        print(f"  {'step':>4}  {'time (s)':>9}  {'percent':>7}")
        for index, (at, percent) in enumerate(strategy.steps()):
            print(f"  {index:>4}  {at:>9.1f}  {percent:>7.2f}")
        print(
            f"  bake {strategy.bake_minutes} min: 100 % from {strategy.last_shift_seconds:.0f} s, "
            f"complete at {strategy.duration_seconds:.0f} s"
        )


def bucketing_stats(n: int, seed: int) -> None:
    rng = random.Random(seed)
    subjects = [f"tenant-{rng.getrandbits(64):016x}" for _ in range(n)]
    buckets_a = [bucket("orders", "prod", "timeout", "7", s) for s in subjects]
    buckets_b = [bucket("orders", "prod", "retries", "7", s) for s in subjects]
    print(f"\n(b) bucketing: {n} subjects (seed {seed}), service orders, env prod, candidate 7")
    print(f"  {'weight %':>8}  {'measured %':>10}  {'deviation':>9}  {'binomial sigma':>14}")
    worst = 0.0
    for w in WEIGHTS:
        measured = 100.0 * sum(b < threshold(w) for b in buckets_a) / n
        worst = max(worst, abs(measured - w))
        sigma = (w * (100 - w) / n) ** 0.5
        print(f"  {w:>8}  {measured:>10.2f}  {measured - w:>+9.2f}  {sigma:>14.2f}")
    print(f"  max |deviation|: {worst:.2f} points")

    violations = 0
    weights = [w / 10 for w in range(0, 1001)]  # 0.0, 0.1, … 100.0
    for b in buckets_a:
        had = False
        for w in weights:
            has = b < threshold(w)
            violations += had and not has
            had = has
    print(f"  monotonicity violations over weights 0.0..100.0 step 0.1: {violations}")

    print("  overlap between key 'timeout' (wA) and key 'retries' (wB):")
    print(f"  {'wA':>4}  {'wB':>4}  {'overlap %':>9}  {'expected wA*wB %':>16}")
    for wa, wb in ((10, 10), (25, 50), (50, 50), (90, 10)):
        both = sum(a < threshold(wa) and b < threshold(wb) for a, b in zip(buckets_a, buckets_b, strict=True))
        print(f"  {wa:>4}  {wb:>4}  {100.0 * both / n:>9.2f}  {wa * wb / 100:>16.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    strategy_table()
    bucketing_stats(args.subjects, args.seed)


if __name__ == "__main__":
    main()
