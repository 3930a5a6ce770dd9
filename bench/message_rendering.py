"""Rendering messages: how fast each shipped template renders, and what rendering costs
the engine, in one run.

Usage: python -m bench.message_rendering [--customers N] [--days D] [--renders R] [--runs N] [--chunk C]

- ``templates``: messages/s of each shipped template, per channel and locale, rendered
  for the sample profile of ``rules/template_checks.py`` (every field set, a cart of
  two lines), by the compiled functions (``rules/liquid_codegen.py``) and by
  python-liquid's interpreter;
- ``engine_*``: the engine with every shipped rule and churn on the same pre-decoded
  demo events, with the shipped templates and without (the same rules, no
  ``templates/``), fed the same events in alternating chunks of ``--chunk`` and each
  timed on CPU time, so a slow moment of the machine falls on both (two whole runs one
  after the other differed by up to 25% on this machine with nothing else running):
  events/s each, the sends rendered, and the cost, the median of ``--runs``. Target:
  rendering costs at most 10%. Then one more run timing the renderer itself: its share
  of the engine's time.

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.demo_events import decoded_events
from churn.tracker import ChurnTracker
from engine import Engine
from engine.driver import Driver
from engine.outputs import Dispatch
from rules.actions import Action, Coupon, Message
from rules.loader import DEFAULT_RULES_DIR, RuleSet, load_rules
from rules.message_context import DEVELOPMENT_LINKS
from rules.message_render import Renderer
from rules.template_checks import sample_profile
from rules.template_compiler import MessageTemplates
from schemas.events import Event
from state.profile import Stamped
from state.stores import MemoryProfileStore
from streams.generator import GeneratorConfig
from streams.settings import load_settings


def template_rates(
    renderer: Renderer, templates: MessageTemplates, renders: int
) -> dict[str, float]:
    profile = sample_profile()
    coupon = Coupon(code="BENCH-CODE", percent=10, valid_until=1_800_000_000.0)
    payload = {"cart_id": "k1", "cart_value": 71.5, "category": "sneakers", "order_id": "o1"}
    payload |= {"ticket_id": "t1", "priority": "high", "topic": "delivery", "tier": "gold"}
    payload |= {"net_revenue": 1200.0, "days_since_last_order": 47}
    payload |= {"next_tier": "gold", "spend_to_next_tier": 120.0}
    rates: dict[str, float] = {}
    for (template, channel), compiled in sorted(templates.by_key.items()):
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


def renderer_fallbacks(rules: RuleSet) -> int:
    renderer = rules.journeys.mover.renderer
    return 0 if renderer is None else renderer.fallbacks


def render_share(events: list[Event], rules: RuleSet) -> float:
    """The share of the engine's time spent inside ``Renderer.render``, in one run: a
    direct measure, steadier than the difference of two runs on a noisy machine."""
    renderer = rules.journeys.mover.renderer
    assert renderer is not None
    spent = 0.0
    original = renderer.render

    def timed(*args: Any, **kwargs: Any) -> Message:
        nonlocal spent
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent += time.perf_counter() - started

    renderer.render = timed  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        engine_rate(events, rules)
        return spent / (time.perf_counter() - started)
    finally:
        del renderer.render


def _driver(rules: RuleSet) -> tuple[Driver, list[int]]:
    """A driver for the engine with ``rules`` and churn, and the count of sends it rendered."""
    settings = load_settings()
    learner = settings.churn.learner()
    engine = Engine(
        MemoryProfileStore(),
        rules,
        settings.profile,
        settings.engine.engine_config(),
        churn=ChurnTracker(settings.churn.config(), learner.scorer),
    )
    rendered = [0]

    def count(action: Action) -> None:
        rendered[0] += action.message is not None

    return Driver(engine, [Dispatch({Action: count})]), rendered


def engine_rate(events: list[Event], rules: RuleSet) -> tuple[float, int]:
    """Events/s of the engine with ``rules`` and churn over the process's CPU time, and
    the sends it rendered."""
    driver, rendered = _driver(rules)
    gc.collect()
    started = time.process_time()
    for event in events:
        driver.apply(event)
    driver.end()
    return len(events) / (time.process_time() - started), rendered[0]


def interleaved(
    events: list[Event], without: RuleSet, with_templates: RuleSet, chunk: int
) -> tuple[float, float, int]:
    """Events/s of the two engines fed the same events in alternating chunks (which goes
    first swaps each chunk), each timed on CPU time: a slow moment of the machine falls
    on both, where two whole runs one after the other would each meet a different one."""
    off, _ = _driver(without)
    on, rendered = _driver(with_templates)
    spent = {"off": 0.0, "on": 0.0}
    gc.collect()
    for number, start in enumerate(range(0, len(events), chunk)):
        part = events[start : start + chunk]
        order = [("off", off), ("on", on)]
        for mode, driver in order[:: -1 if number % 2 else 1]:
            started = time.process_time()
            for event in part:
                driver.apply(event)
            spent[mode] += time.process_time() - started
    for mode, driver in (("off", off), ("on", on)):
        started = time.process_time()
        driver.end()
        spent[mode] += time.process_time() - started
    return len(events) / spent["off"], len(events) / spent["on"], rendered[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--renders", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs of both engines")
    parser.add_argument("--chunk", type=int, default=2000, help="events per turn of each engine")
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
    renderer = with_templates.journeys.mover.renderer
    assert renderer is not None
    assert with_templates.templates is not None
    interpreter = Renderer(
        with_templates.templates,
        renderer.settings,
        renderer.operator_rules,
        compile_parts=False,
    )
    rates = template_rates(renderer, with_templates.templates, args.renders)
    interpreted = template_rates(interpreter, with_templates.templates, args.renders)
    print(f"{'template/channel/locale':40s} {'compiled':>20s} {'interpreted':>20s}")
    for name, rate in rates.items():
        print(
            f"{name:40s} {rate:9,.0f}/s {1e6 / rate:6.1f} µs"
            f" {interpreted[name]:9,.0f}/s {1e6 / interpreted[name]:6.1f} µs"
        )
    config = GeneratorConfig(customers=args.customers, days=args.days, seed=42)
    events = decoded_events(config)
    runs = [interleaved(events, without, with_templates, args.chunk) for _ in range(args.runs)]
    costs = sorted(round(1 - on / off, 3) for off, on, _ in runs)
    off, on, rendered = (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        runs[0][2],
    )
    share = render_share(events, with_templates)
    print(f"engine without templates: {off:10,.0f} events/s (median of {args.runs} runs)")
    print(f"engine with templates:    {on:10,.0f} events/s ({rendered:,} sends rendered)")
    print(
        f"rendering costs {statistics.median(costs):.1%} of engine throughput (target <= 10%);"
        f" each run: {', '.join(f'{cost:.1%}' for cost in costs)}"
    )
    print(f"time inside the renderer, in one run: {share:.1%} of the engine's")
    figures = {
        "events": len(events),
        "engine_events_per_s_without_templates": round(off),
        "engine_events_per_s_with_templates": round(on),
        "rendered_sends": rendered,
        "rendering_cost": statistics.median(costs),
        "rendering_cost_per_run": costs,
        "render_share_of_engine_time": round(share, 3),
        "fallbacks_to_interpreter": renderer_fallbacks(with_templates),
        "slowest_template_messages_per_s": round(min(rates.values())),
        "templates_messages_per_s": {name: round(rate) for name, rate in rates.items()},
        "templates_interpreted_messages_per_s": {
            name: round(rate) for name, rate in interpreted.items()
        },
        "compiled_speedup_median": round(
            statistics.median(rates[name] / interpreted[name] for name in rates), 2
        ),
    }
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
