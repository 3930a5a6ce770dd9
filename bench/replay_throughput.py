"""Replay throughput of the engine vs. an orjson decode-only loop over the same lines.

Usage: python bench/replay_throughput.py [--customers N] [--days D]

Defaults generate about 1M events. All rates are measured in the same run on the same
lines. The target figure is the engine with the shipped rules against orjson decoding
alone (target ratio >= 0.25); the stages in between show where the time goes.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable

import orjson

from engine import Engine
from rules.loader import DEFAULT_RULES_DIR, RuleSet, load_rules
from schemas.decode import DeadLetter, PartialEvent, decode_event
from state.stores import MemoryProfileStore
from streams.generator import GeneratorConfig, generate_stream


def decode_only(lines: list[bytes]) -> None:
    for line in lines:
        orjson.loads(line)


def contract_decode(lines: list[bytes]) -> None:
    for number, line in enumerate(lines, start=1):
        decode_event(line, source="bench", position=number)


def engine_run(rules: RuleSet) -> Callable[[list[bytes]], None]:
    def run(lines: list[bytes]) -> None:
        engine = Engine(MemoryProfileStore(), rules)
        for number, line in enumerate(lines, start=1):
            event = decode_event(line, source="bench", position=number)
            if isinstance(event, DeadLetter | PartialEvent):
                continue
            engine.apply(event)
            engine.advance(engine.watermark)
        engine.finish(engine.newest_event_time)

    return run


def rate(run: Callable[[list[bytes]], None], lines: list[bytes]) -> float:
    gc.collect()
    started = time.perf_counter()
    run(lines)
    return len(lines) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=7500)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    lines = list(generate_stream(GeneratorConfig(customers=args.customers, days=args.days, seed=1)))
    print(f"lines: {len(lines):,}")
    baseline = rate(decode_only, lines)
    stages = [
        ("contract decode (msgspec)", rate(contract_decode, lines)),
        ("engine, no rules", rate(engine_run(RuleSet.empty()), lines)),
        ("engine, shipped rules", rate(engine_run(load_rules(DEFAULT_RULES_DIR)), lines)),
    ]
    print(f"{'orjson decode only':28s}: {baseline:10,.0f} lines/s  {1e6 / baseline:6.2f} µs/line")
    for label, value in stages:
        print(
            f"{label:28s}: {value:10,.0f} lines/s  {1e6 / value:6.2f} µs/line"
            f"  ratio {value / baseline:.3f}"
        )
    print(
        f"ratio (engine, shipped rules / orjson): {stages[-1][1] / baseline:.3f}  (target >= 0.25)"
    )


if __name__ == "__main__":
    main()
