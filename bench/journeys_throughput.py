"""Engine throughput with every built-in journey active vs. the same rules without journeys.

Usage: python bench/journeys_throughput.py [--customers N] [--days D]

Both runs replay the same generated lines in the same process, through decoding, the
engine and the end-of-input flush. Target: with journeys, at least half the rate without.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import time

from engine import Engine
from rules.journey_runtime import JourneyRuntime
from rules.loader import DEFAULT_RULES_DIR, RuleSet, load_rules
from schemas.decode import DeadLetter, PartialEvent, decode_event
from state.stores import MemoryProfileStore
from streams.generator import GeneratorConfig, generate_stream


def rate(rules: RuleSet, lines: list[bytes]) -> tuple[float, int]:
    gc.collect()
    engine = Engine(MemoryProfileStore(), rules)
    outputs = 0
    started = time.perf_counter()
    for number, line in enumerate(lines, start=1):
        event = decode_event(line, source="bench", position=number)
        if isinstance(event, DeadLetter | PartialEvent):
            continue
        outputs += len(engine.apply(event))
    outputs += len(engine.finish(engine.newest_event_time))
    return len(lines) / (time.perf_counter() - started), outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    lines = list(generate_stream(GeneratorConfig(customers=args.customers, days=args.days, seed=1)))
    shipped = load_rules(DEFAULT_RULES_DIR)
    without = dataclasses.replace(shipped, journeys=JourneyRuntime((), shipped.journeys.policies))
    base, base_out = rate(without, lines)
    full, full_out = rate(shipped, lines)
    print(f"lines: {len(lines):,}; journeys: {len(shipped.journeys.journeys)}")
    print(f"engine, tags only          : {base:10,.0f} lines/s  ({base_out:,} outputs)")
    print(f"engine, tags + journeys    : {full:10,.0f} lines/s  ({full_out:,} outputs)")
    print(f"ratio (journeys / without) : {full / base:10.3f}  (target >= 0.5)")


if __name__ == "__main__":
    main()
