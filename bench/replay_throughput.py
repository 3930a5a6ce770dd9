"""The engine with every shipped rule and churn, against CPython's floor, on the demo stream.

Usage: python -m bench.replay_throughput [--customers N] [--days D] [--seed S]   (make bench)

Defaults are ``make demo``'s stream (5,000 customers, 180 days, 1% malformed records,
seed 42). In one run, on the same lines:

- ``orjson_lines_per_s``: ``orjson.loads`` of every line, nothing else (the baseline);
- ``floor_events_per_s``: ``bench/python_floor.py``'s bare-update loop (decode, dedup,
  counters, clock, views), the least per-line work CPython can do for a profile update;
- ``engine_events_per_s``: what ``rapport replay`` does per line: the contract decoder,
  then the engine with the shipped rules and the churn tracker through the one driver
  (``engine/driver.py``) into the replay's counting sinks and the churn learner, and the
  end of input. The target is at least 0.25 of the floor;
- ``profile_bytes_median`` / ``profile_bytes_p99``: the final profiles as a worker stores
  them (``state/stores/codec.py``), with their JSON sizes for comparison.

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
import orjson

from bench.python_floor import minimal_profile_loop
from engine import Engine
from engine.driver import Driver
from rules.journey_report import JourneyReport
from rules.loader import DEFAULT_RULES_DIR, load_rules
from schemas.decode import DeadLetter, PartialEvent, decode_event
from state.stores import MemoryProfileStore
from state.stores.codec import ProfileCodec
from streams.edge_counts import EdgeCounts
from streams.generator import GeneratorConfig, generate_stream
from streams.replay import LearnerSink
from streams.settings import load_settings

#: Later than every event of the stream, earlier than its future-dated malformed ones.
LATEST = datetime(2030, 1, 1, tzinfo=UTC)


def decode_only(lines: list[bytes]) -> float:
    """Lines/s of ``orjson.loads`` alone (a malformed line raises and is skipped)."""
    loads, error = orjson.loads, orjson.JSONDecodeError
    gc.collect()
    started = time.perf_counter()
    for line in lines:
        try:  # noqa: SIM105 - contextlib.suppress costs more than the decode it times
            loads(line)
        except error:
            pass
    return len(lines) / (time.perf_counter() - started)


def engine_run(lines: list[bytes]) -> Engine:
    """Every line through the decoder and the engine, as ``rapport replay`` does."""
    settings = load_settings()
    learner = settings.churn.learner()
    from churn.tracker import ChurnTracker

    engine = Engine(
        MemoryProfileStore(),
        load_rules(DEFAULT_RULES_DIR),
        settings.profile,
        settings.engine.engine_config(),
        churn=ChurnTracker(settings.churn.config(), learner.scorer),
    )
    driver = Driver(engine, [EdgeCounts(), JourneyReport(), LearnerSink(learner)])
    for number, line in enumerate(lines, start=1):
        item = decode_event(line, source="bench", position=number, latest_allowed=LATEST)
        if type(item) is DeadLetter:
            continue
        if type(item) is PartialEvent:
            item = item.event
        driver.apply(item)  # type: ignore[arg-type]
    driver.end()
    return engine


def timed(run: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def quantile(values: list[int], share: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    config = GeneratorConfig(
        customers=args.customers, days=args.days, seed=args.seed, malformed=0.01
    )
    lines = list(generate_stream(config))
    print(f"lines: {len(lines):,} ({args.customers:,} customers, {args.days} days)")
    orjson_rate = decode_only(lines)
    floor_rate = minimal_profile_loop(lines)
    seconds, result = timed(lambda: engine_run(lines))
    engine_rate = len(lines) / seconds
    assert isinstance(result, Engine)
    codec = ProfileCodec()
    profiles = list(result.store.profiles())
    stored = [len(codec.encode(p)) for p in profiles]
    as_json = [len(msgspec.json.encode(p)) for p in profiles]
    rows = [
        ("orjson decode only", orjson_rate),
        ("floor: bare profile update", floor_rate),
        ("engine: rules + churn", engine_rate),
    ]
    for label, rate in rows:
        print(f"{label:28s}: {rate:10,.0f} lines/s  {1e6 / rate:6.2f} µs/line")
    print(f"engine / floor: {engine_rate / floor_rate:.3f}  (target >= 0.25)")
    print(
        f"profiles: {len(profiles):,}; stored median {quantile(stored, 0.5):,} B, "
        f"p99 {quantile(stored, 0.99):,} B (JSON median {quantile(as_json, 0.5):,} B, "
        f"p99 {quantile(as_json, 0.99):,} B, mean {statistics.mean(as_json):,.0f} B)"
    )
    figures = {
        "lines": len(lines),
        "orjson_lines_per_s": round(orjson_rate),
        "floor_events_per_s": round(floor_rate),
        "engine_events_per_s": round(engine_rate),
        "engine_to_floor": round(engine_rate / floor_rate, 3),
        "profile_bytes_median": quantile(stored, 0.5),
        "profile_bytes_p99": quantile(stored, 0.99),
        "profile_json_bytes_median": quantile(as_json, 0.5),
        "profile_json_bytes_p99": quantile(as_json, 0.99),
    }
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
