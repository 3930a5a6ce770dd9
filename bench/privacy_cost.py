"""What retention costs the worker's hot path: throughput with it off vs on, same run.

    .venv/bin/python -m bench.privacy_cost [--customers 2000] [--days 90] [--rounds 3]

Drives ``PartitionEngines`` as the worker does (raw records of 4 partitions, decoded,
applied) over a generated stream with the shipped rules, three ways:

- **off**: ``profile.privacy.retention_days: 0``: the baseline;
- **on**: the default (1095 days): every profile gets a retention timer, none falls due;
- **on, 30 days**: profiles quiet for 30 days are anonymised during the stream, each
  removal taking its timers out of the queue (one pass over it).

The three alternate ``--rounds`` times; the fastest of each is kept. Also printed: the
timers queued at the end, and profiles anonymised.
"""

from __future__ import annotations

import argparse
import gc
import time

from bench.metrics_cost import PARTITIONS, records_by_partition
from rules.loader import DEFAULT_RULES_DIR, RuleSet, load_rules
from state.policy import PrivacyPolicy, ProfilePolicy
from streams.generator import GeneratorConfig
from streams.partitions import PartitionEngines

WAYS = {"off": 0, "on": 1095, "on, 30 days": 30}


def run(
    rules: RuleSet, records: list[tuple[int, bytes]], retention_days: int
) -> tuple[float, int, int]:
    """(seconds, timers queued at the end, profiles anonymised) for every record."""
    policy = ProfilePolicy(privacy=PrivacyPolicy(retention_days=retention_days))
    engines = PartitionEngines(rules, policy, partitions=PARTITIONS, coupon_shares=PARTITIONS)
    engines.ensure(range(PARTITIONS))
    now = 2e9
    gc.collect()
    started = time.perf_counter()
    for offset, (partition, raw) in enumerate(records):
        engines.handle(partition, raw, "bench", now, offset=offset)
    seconds = time.perf_counter() - started
    all_engines = [engines.engine(p) for p in range(PARTITIONS)]
    timers = sum(engine.pending_reviews() for engine in all_engines)
    anonymised = sum(engine.stats.anonymised for engine in all_engines)
    return seconds, timers, anonymised


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rules = load_rules(DEFAULT_RULES_DIR)
    records = records_by_partition(
        GeneratorConfig(customers=args.customers, days=args.days, seed=42)
    )
    best = dict.fromkeys(WAYS, float("inf"))
    seen: dict[str, tuple[int, int]] = {}
    for _ in range(args.rounds):
        for way, days in WAYS.items():
            seconds, timers, anonymised = run(rules, records, days)
            best[way] = min(best[way], seconds)
            seen[way] = (timers, anonymised)
    base = len(records) / best["off"]
    print(f"records: {len(records):,} over {PARTITIONS} partitions, best of {args.rounds}")
    for way in WAYS:
        rate = len(records) / best[way]
        timers, anonymised = seen[way]
        print(
            f"retention {way:<12} {rate:10,.0f} records/s  ratio {rate / base:.3f}  "
            f"timers queued {timers:,}  anonymised {anonymised:,}"
        )


if __name__ == "__main__":
    main()
