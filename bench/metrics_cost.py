"""What metrics cost the worker's hot path: throughput with metrics on vs off, same run.

    .venv/bin/python -m bench.metrics_cost [--customers 3000] [--days 90] [--rounds 3]
        [--scrape-every 1.0]

Drives ``PartitionEngines`` as the worker does (raw records of 4 partitions, decoded,
applied, outputs counted) over a generated stream with the shipped rules:

- **off**: edge counting and the KPI tally replaced by no-ops: the baseline;
- **on**: edge counts, KPI tally, and a full scrape (every family the engines give,
  rendered to Prometheus text, customers counted over every profile held) every
  ``--scrape-every`` seconds of the run: 15 times the rate of a 15 s scrape interval at
  the default of 1 s.

The two alternate ``--rounds`` times; the fastest of each is kept. The target (issue 6):
throughput with metrics on within 10% of off.
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest

from rules.loader import DEFAULT_RULES_DIR, RuleSet, load_rules
from schemas import events as ev
from state.kpis import KpiTally
from state.profile import Profile
from streams.edge_counts import EdgeCounts
from streams.generator import GeneratorConfig, generate_stream
from streams.metrics import FunctionCollector, engine_metrics, kpi_metrics
from streams.partitions import PartitionEngines, partition_of

PARTITIONS = 4


class _NoCounts(EdgeCounts):
    def count_read(self, event_class: type, age_seconds: float) -> None:
        pass

    def count_dead(self, reason: str) -> None:
        pass

    def write(self, output: object) -> None:
        pass


class _NoTally(KpiTally):
    def before(self, profile: Profile, event: ev.Event, ts: float) -> None:
        return None


def records_by_partition(config: GeneratorConfig) -> list[tuple[int, bytes]]:
    records = []
    for line in generate_stream(config):
        try:
            key = orjson.loads(line).get("customer_id") or ""
        except orjson.JSONDecodeError:
            key = ""
        records.append((partition_of(key, PARTITIONS), line))
    return records


def run(
    rules: RuleSet, records: list[tuple[int, bytes]], metrics: bool, scrape_every: float
) -> tuple[float, int]:
    """(seconds, scrapes) for every record through the engines, as the worker feeds them."""
    engines = PartitionEngines(rules, partitions=PARTITIONS, coupon_shares=PARTITIONS)
    engines.ensure(range(PARTITIONS))
    if not metrics:
        engines.counts = _NoCounts()
        engines.sinks[:] = [engines.counts]
        for partition in range(PARTITIONS):
            engines.engine(partition).kpis = _NoTally()
    registry = CollectorRegistry(auto_describe=False)

    def families() -> Any:
        yield from engine_metrics(engines)
        yield from kpi_metrics(engines)

    registry.register(FunctionCollector(families))
    now = 2e9
    scrapes = 0
    gc.collect()
    started = time.perf_counter()
    next_scrape = started + scrape_every
    for offset, (partition, raw) in enumerate(records):
        engines.handle(partition, raw, "bench", now, offset=offset)  # outputs: to the counts
        if metrics and offset % 256 == 0 and time.perf_counter() >= next_scrape:
            generate_latest(registry)
            scrapes += 1
            next_scrape = time.perf_counter() + scrape_every
    engines.tick(now + 1e7)
    return time.perf_counter() - started, scrapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scrape-every", type=float, default=1.0)
    args = parser.parse_args()
    rules = load_rules(DEFAULT_RULES_DIR)
    records = records_by_partition(
        GeneratorConfig(customers=args.customers, days=args.days, seed=42)
    )
    best = {False: float("inf"), True: float("inf")}
    scrapes = 0
    for _ in range(args.rounds):
        for metrics in (False, True):
            seconds, done = run(rules, records, metrics, args.scrape_every)
            best[metrics] = min(best[metrics], seconds)
            scrapes = max(scrapes, done)
    off, on = len(records) / best[False], len(records) / best[True]
    print(f"records: {len(records):,} over {PARTITIONS} partitions, best of {args.rounds}")
    print(f"metrics off: {off:10,.0f} records/s (baseline)")
    print(f"metrics on:  {on:10,.0f} records/s, {scrapes} scrapes (one per {args.scrape_every}s)")
    print(f"ratio on/off: {on / off:.3f} (target >= 0.90)")


if __name__ == "__main__":
    main()
