"""What the churn model costs the engine, per event and per snapshot.

    .venv/bin/python -m bench.churn_scoring [--customers 3000] [--days 180] [--rounds 3]

In one run, on the same decoded events (a generated stream), with the shipped rules:

1. **Baseline**: the engine without the churn model.
2. **With churn**: the same engine with the churn tracker, its labels learned as they
   come out (as replay does). The learner starts ready (taught beforehand on the first
   run's labels), so every snapshot is scored.
3. **Per snapshot**: ``features`` plus the folded scorer on real profiles, timed alone.

The target (issue 5): the model's cost per event, mean, at most 10 µs. Each run is
repeated ``--rounds`` times and the fastest kept.
"""

from __future__ import annotations

import argparse
import copy
import gc
import time

from churn.features import features
from churn.model import ChurnLearner
from churn.tracker import ChurnConfig, ChurnLabel, ChurnTracker
from engine import Engine
from rules.loader import DEFAULT_RULES_DIR, RuleSet, load_rules
from schemas.decode import decode_event
from schemas.events import Event
from state.stores import MemoryProfileStore
from streams.generator import GeneratorConfig, generate_stream


def run(rules: RuleSet, events: list[Event], learner: ChurnLearner | None) -> tuple[float, Engine]:
    """Seconds for the engine over ``events`` (and the end-of-input flush)."""
    tracker = ChurnTracker(ChurnConfig(), learner.scorer) if learner is not None else None
    engine = Engine(MemoryProfileStore(), rules, churn=tracker)
    gc.collect()
    started = time.perf_counter()
    for event in events:
        outputs = engine.apply(event)
        if learner is not None:
            for item in outputs:
                if type(item) is ChurnLabel:
                    learner.learn(item.values, item.churned, item.score)
    engine.finish(engine.newest_event_time)
    return time.perf_counter() - started, engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rules = load_rules(DEFAULT_RULES_DIR)
    config = GeneratorConfig(customers=args.customers, days=args.days, seed=42)
    events = [e for e in map(decode_event, generate_stream(config)) if isinstance(e, Event)]
    # A ready model: taught on the labels of one run, so the timed runs score every snapshot.
    teacher = ChurnLearner(min_labels=1)
    run(rules, events, teacher)
    if not teacher.ready:
        raise SystemExit("the stream gave no labels of one kind: use more --days")

    base = min(run(rules, events, None)[0] for _ in range(args.rounds))
    timed = [run(rules, events, copy.deepcopy(teacher)) for _ in range(args.rounds)]
    with_churn, engine = min(timed, key=lambda pair: pair[0])
    profiles = [p for p in map(engine.store.get, engine.store.sorted_keys()) if p and p.customer_id]
    snapshots = len(profiles)
    scorer = teacher.scorer()
    started = time.perf_counter()
    for profile in profiles:
        scorer.score(features(profile, profile.as_of))
    per_snapshot = (time.perf_counter() - started) / max(snapshots, 1)
    n = len(events)
    cost = (with_churn - base) / n
    print(f"events {n:,} ({args.customers:,} customers, {args.days} days), rounds {args.rounds}")
    print(f"engine without churn: {base / n * 1e6:.2f} µs/event ({n / base:,.0f} events/s)")
    print(
        f"engine with churn:    {with_churn / n * 1e6:.2f} µs/event ({n / with_churn:,.0f} events/s)"
    )
    print(
        f"churn cost: {cost * 1e6:.2f} µs/event mean (target ≤ 10), ratio {with_churn / base:.3f}"
    )
    print(
        f"per snapshot (features + score): {per_snapshot * 1e6:.2f} µs over {snapshots:,} profiles"
    )
    print(f"labels learned in a timed run: {teacher.version:,}")


if __name__ == "__main__":
    main()
