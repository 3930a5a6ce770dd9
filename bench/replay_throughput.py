"""Replay throughput of the engine vs. an orjson decode-only loop over the same lines.

Usage: python bench/replay_throughput.py [--customers N] [--days D]
Defaults generate about 1M events. Prints both rates and the ratio (target: >= 0.25).
"""

from __future__ import annotations

import argparse
import time

import orjson

from rules.engine import Engine
from rules.loader import DEFAULT_RULES_DIR, load_rules
from schemas.decode import DeadLetter, decode_event
from state.stores import MemoryProfileStore
from streams.generator import GeneratorConfig, generate_stream


def decode_only(lines: list[bytes]) -> float:
    started = time.perf_counter()
    for line in lines:
        orjson.loads(line)
    return len(lines) / (time.perf_counter() - started)


def engine_rate(lines: list[bytes]) -> float:
    engine = Engine(MemoryProfileStore(), load_rules(DEFAULT_RULES_DIR))
    started = time.perf_counter()
    for number, line in enumerate(lines, start=1):
        event = decode_event(line, source="bench", position=number)
        if isinstance(event, DeadLetter):
            continue
        engine.process(event)
        engine.advance(engine.watermark)
    engine.advance(engine.newest_event_time)
    return len(lines) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=7500)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    lines = list(generate_stream(GeneratorConfig(customers=args.customers, days=args.days, seed=1)))
    print(f"lines: {len(lines):,}")
    baseline = decode_only(lines)
    rate = engine_rate(lines)
    print(f"orjson decode only : {baseline:12,.0f} lines/s")
    print(f"engine (replay)    : {rate:12,.0f} events/s")
    print(f"ratio              : {rate / baseline:12.3f}  (target >= 0.25)")


if __name__ == "__main__":
    main()
