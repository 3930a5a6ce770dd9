"""What reading customers' text costs the engine: sentiment scoring on against off, in
one run.

Usage: python -m bench.sentiment_cost [--customers N] [--days D] [--runs N] [--chunk C]

Two engines with every shipped rule (routing included) and churn get the same
pre-decoded demo events, whose tickets, replies, rating comments and reviews carry text
in Chinese and English (``streams/generator_text.py``): one scores the text
(``engine.score_sentiment`` on, the default), one does not (off: routing still reads the
keywords). They are fed in alternating chunks of ``--chunk`` events, each timed on CPU
time, so a slow moment of the machine falls on both; the cost is the median of
``--runs``. Target (issue 22): at most 10% inline, else score off the hot path. Then one
more run times ``score_text`` itself: its share of the engine's time, and its cost per
text by language.

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import statistics
import time
from typing import Any

import orjson

import engine.service_desk as desk
from bench.demo_events import decoded_events
from churn.tracker import ChurnTracker
from engine import Engine
from engine.driver import Driver
from engine.service_desk import TEXT_KINDS
from rules.loader import DEFAULT_RULES_DIR, RuleSet, load_rules
from schemas.events import Event
from sentiment import TextScore
from state.stores import MemoryProfileStore
from streams.generator import GeneratorConfig
from streams.settings import load_settings


def _driver(rules: RuleSet, score: bool) -> Driver:
    settings = load_settings()
    learner = settings.churn.learner()
    config = dataclasses.replace(settings.engine.engine_config(), score_sentiment=score)
    engine = Engine(
        MemoryProfileStore(),
        rules,
        settings.profile,
        config,
        churn=ChurnTracker(settings.churn.config(), learner.scorer),
    )
    return Driver(engine, [])


def interleaved(events: list[Event], rules: RuleSet, chunk: int) -> tuple[float, float]:
    """Events/s off and on, fed the same events in alternating chunks (who goes first
    swaps each chunk), each timed on CPU time."""
    drivers = {"off": _driver(rules, False), "on": _driver(rules, True)}
    spent = dict.fromkeys(drivers, 0.0)
    gc.collect()
    for number, start in enumerate(range(0, len(events), chunk)):
        part = events[start : start + chunk]
        order = list(drivers.items())
        for mode, driver in order[:: -1 if number % 2 else 1]:
            started = time.process_time()
            for event in part:
                driver.apply(event)
            spent[mode] += time.process_time() - started
    for mode, driver in drivers.items():
        started = time.process_time()
        driver.end()
        spent[mode] += time.process_time() - started
    return len(events) / spent["off"], len(events) / spent["on"]


def scoring_share(events: list[Event], rules: RuleSet) -> dict[str, Any]:
    """One more run with ``score_text`` timed: its share of the engine's time, and per text."""
    original = getattr(desk, "score_text")  # noqa: B009  (the name the stage calls)
    spent: dict[str, list[float]] = {}

    def timed(text: str, language: str | None = None) -> TextScore | None:
        started = time.perf_counter()
        found: TextScore | None = original(text, language)
        took = time.perf_counter() - started
        spent.setdefault(found.language if found else "unscored", []).append(took)
        return found

    setattr(desk, "score_text", timed)  # noqa: B010
    try:
        driver = _driver(rules, True)
        gc.collect()
        started = time.perf_counter()
        for event in events:
            driver.apply(event)
        driver.end()
        total = time.perf_counter() - started
    finally:
        setattr(desk, "score_text", original)  # noqa: B010
    inside = sum(sum(times) for times in spent.values())
    return {
        "share_of_engine_time": round(inside / total, 4),
        "texts": {language: len(times) for language, times in spent.items()},
        "us_per_text": {
            language: round(statistics.mean(times) * 1e6, 1) for language, times in spent.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=2000)
    args = parser.parse_args()
    rules = load_rules(DEFAULT_RULES_DIR)
    config = GeneratorConfig(customers=args.customers, days=args.days, seed=42)
    events = decoded_events(config)
    with_text = sum(type(e) in TEXT_KINDS for e in events)
    runs = [interleaved(events, rules, args.chunk) for _ in range(args.runs)]
    costs = sorted(round(1 - on / off, 3) for off, on in runs)
    off = statistics.median(r[0] for r in runs)
    on = statistics.median(r[1] for r in runs)
    share = scoring_share(events, rules)
    print(f"{len(events):,} events, {with_text:,} with text ({with_text / len(events):.1%})")
    print(f"engine, sentiment off: {off:10,.0f} events/s (median of {args.runs} runs)")
    print(f"engine, sentiment on:  {on:10,.0f} events/s")
    print(
        f"scoring costs {statistics.median(costs):.1%} of engine throughput (target <= 10%);"
        f" each run: {', '.join(f'{cost:.1%}' for cost in costs)}"
    )
    print(
        f"time inside score_text, in one run: {share['share_of_engine_time']:.1%} of the "
        f"engine's; per text: {share['us_per_text']}"
    )
    figures = {
        "events": len(events),
        "events_with_text": with_text,
        "engine_events_per_s_sentiment_off": round(off),
        "engine_events_per_s_sentiment_on": round(on),
        "sentiment_cost": statistics.median(costs),
        "sentiment_cost_per_run": costs,
        "scoring": share,
    }
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
