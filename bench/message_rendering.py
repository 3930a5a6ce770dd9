"""Rendering messages: how fast each shipped template renders, and what rendering costs
the engine, in one run.

Usage: python -m bench.message_rendering [--customers N] [--days D] [--renders R]

- ``templates``: messages/s of each shipped template, per channel and locale, rendered
  for the sample profile of ``rules/template_checks.py`` (every field set, a cart of
  two lines);
- ``engine_*``: the engine with every shipped rule and churn on the same pre-decoded
  demo events, with the shipped templates and without (the same rules, no
  ``templates/``): events/s each, the sends rendered, and the ratio. Target: rendering
  costs at most 10%.

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from churn.tracker import ChurnTracker
from engine import Engine
from engine.driver import Driver
from engine.outputs import Dispatch
from rules.actions import Action, Coupon
from rules.loader import DEFAULT_RULES_DIR, RuleSet, load_rules
from rules.message_context import DEVELOPMENT_LINKS
from rules.template_checks import sample_profile
from schemas.decode import DeadLetter, PartialEvent, decode_event
from schemas.events import Event
from state.profile import Stamped
from state.stores import MemoryProfileStore
from streams.generator import GeneratorConfig, generate_stream
from streams.settings import load_settings

LATEST = datetime(2030, 1, 1, tzinfo=UTC)


def template_rates(rules: RuleSet, renders: int) -> dict[str, float]:
    renderer = rules.journeys.mover.renderer
    assert renderer is not None
    assert rules.templates is not None
    profile = sample_profile()
    coupon = Coupon(code="BENCH-CODE", percent=10, valid_until=1_800_000_000.0)
    payload = {"cart_id": "k1", "cart_value": 71.5, "category": "sneakers", "order_id": "o1"}
    payload |= {"ticket_id": "t1", "priority": "high", "topic": "delivery", "tier": "gold"}
    payload |= {"net_revenue": 1200.0, "days_since_last_order": 47}
    rates: dict[str, float] = {}
    for (template, channel), compiled in sorted(rules.templates.by_key.items()):
        for locale in sorted(compiled.locales):
            profile.traits["locale"] = Stamped(locale, 0.0, "bench")
            started = time.perf_counter()
            for _ in range(renders):
                renderer.render(
                    profile,
                    template=template,
                    channel=channel,
                    journey_id="bench",
                    entity_kind="cart_id",
                    entity=next(iter(profile.carts)),
                    payload=payload,
                    event={},
                    coupon=coupon,
                    links=DEVELOPMENT_LINKS,
                )
            rates[f"{template}/{channel}/{locale}"] = renders / (time.perf_counter() - started)
    return rates


def engine_rate(events: list[Event], rules: RuleSet) -> tuple[float, int]:
    """Events/s of the engine with ``rules`` and churn, and the sends it rendered."""
    settings = load_settings()
    learner = settings.churn.learner()
    engine = Engine(
        MemoryProfileStore(),
        rules,
        settings.profile,
        settings.engine.engine_config(),
        churn=ChurnTracker(settings.churn.config(), learner.scorer),
    )
    rendered = 0

    def count(action: Action) -> None:
        nonlocal rendered
        rendered += action.message is not None

    driver = Driver(engine, [Dispatch({Action: count})])
    gc.collect()
    started = time.perf_counter()
    for event in events:
        driver.apply(event)
    driver.end()
    return len(events) / (time.perf_counter() - started), rendered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--renders", type=int, default=500)
    args = parser.parse_args()
    with_templates = load_rules(DEFAULT_RULES_DIR)
    folder = Path(tempfile.mkdtemp())
    try:
        plain_dir = folder / "rules"
        shutil.copytree(DEFAULT_RULES_DIR, plain_dir)
        shutil.rmtree(plain_dir / "templates")
        without = load_rules(plain_dir)
    finally:
        shutil.rmtree(folder)
    rates = template_rates(with_templates, args.renders)
    for name, rate in rates.items():
        print(f"{name:40s} {rate:9,.0f} messages/s  {1e6 / rate:7.1f} µs")
    config = GeneratorConfig(customers=args.customers, days=args.days, seed=42)
    events: list[Event] = []
    for number, line in enumerate(generate_stream(config), start=1):
        item = decode_event(line, source="bench", position=number, latest_allowed=LATEST)
        if isinstance(item, PartialEvent):
            item = item.event
        if not isinstance(item, DeadLetter):
            events.append(item)
    runs = []
    for _ in range(2):  # alternate, so a busy moment of the machine hits both
        runs.append((engine_rate(events, without), engine_rate(events, with_templates)))
    off = max(run[0][0] for run in runs)
    on, rendered = max(run[1][0] for run in runs), runs[0][1][1]
    print(f"engine without templates: {off:10,.0f} events/s")
    print(f"engine with templates:    {on:10,.0f} events/s ({rendered:,} sends rendered)")
    print(f"rendering costs {1 - on / off:.1%} of engine throughput (target <= 10%)")
    figures = {
        "events": len(events),
        "engine_events_per_s_without_templates": round(off),
        "engine_events_per_s_with_templates": round(on),
        "rendered_sends": rendered,
        "rendering_cost": round(1 - on / off, 3),
        "slowest_template_messages_per_s": round(min(rates.values())),
        "templates_messages_per_s": {name: round(rate) for name, rate in rates.items()},
    }
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
