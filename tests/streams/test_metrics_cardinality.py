"""Metrics stay bounded however many customers there are: no label carries an id."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest

from rules.loader import DEFAULT_RULES_DIR, load_rules
from streams.metrics import FunctionCollector, engine_metrics, kpi_metrics
from streams.partitions import PartitionEngines, partition_of

CUSTOMERS = 100_000
PARTITIONS = 4
START = datetime(2026, 2, 1, tzinfo=UTC)
#: Anything that looks like one of the stream's ids: customers, carts, orders, events.
ID = re.compile(r"c\d{6}|cart-\d+|order-\d+|ev-\d+")


def _lines() -> list[tuple[int, bytes]]:
    """Per customer a cart item, the order that closes it, and every 1,000th a bad line."""
    lines = []
    for n in range(CUSTOMERS):
        customer = f"c{n:06d}"
        when = START + timedelta(seconds=n * 8)
        common = {"customer_id": customer}
        added = {
            **common,
            "type": "cart.item_added",
            "event_id": f"ev-{n}-a",
            "occurred_at": when.isoformat(),
            "properties": {
                "cart_id": f"cart-{n}",
                "product_id": f"p{n % 300}",
                "quantity": 1,
                "price": 25.0,
            },
        }
        ordered = {
            **common,
            "type": "order.placed",
            "event_id": f"ev-{n}-o",
            "occurred_at": (when + timedelta(minutes=3)).isoformat(),
            "properties": {"order_id": f"order-{n}", "total": 25.0, "cart_id": f"cart-{n}"},
        }
        partition = partition_of(customer, PARTITIONS)  # where a producer would put it
        lines.append((partition, orjson.dumps(added)))
        lines.append((partition, orjson.dumps(ordered)))
        if n % 1000 == 0:
            lines.append((partition, b'{"type": "order.placed", "event_id": "ev-' + b"%d" % n))
    return lines


def _scrape(engines: PartitionEngines) -> str:
    def families() -> Any:
        yield from engine_metrics(engines)
        yield from kpi_metrics(engines)

    registry = CollectorRegistry()
    registry.register(FunctionCollector(families))
    return generate_latest(registry).decode()


def test_a_hundred_thousand_customers_give_a_bounded_set_of_series_without_ids() -> None:
    engines = PartitionEngines(
        load_rules(DEFAULT_RULES_DIR), partitions=PARTITIONS, coupon_shares=PARTITIONS
    )
    now = (START + timedelta(days=30)).timestamp()
    for partition, raw in _lines():  # outputs are counted as they go (the counts are a sink)
        engines.handle(partition, raw, "test", now)
    engines.tick(now)  # the last hour's events wait for the watermark
    text = _scrape(engines)
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    labels = re.findall(r'="([^"]*)"', text)
    assert not [value for value in labels if ID.search(value)]
    assert len(samples) < 300, len(samples)
    assert 'rapport_events_total{type="order.placed"} 100000.0' in text
    assert 'rapport_dead_letters_total{reason="invalid_json"} 100.0' in text
    assert "rapport_journey_runs_total" in text
    assert "rapport_profiles 100000.0" in text
    assert 'rapport_funnel_steps_total{step="carted"} 100000.0' in text
    assert "rapport_first_orders_total 100000.0" in text
    assert 'rapport_customers_by_stage{stage="new"} 100000.0' in text


def test_event_latency_is_a_histogram_of_wall_clock_less_event_time() -> None:
    engines = PartitionEngines(load_rules(DEFAULT_RULES_DIR))
    event = {
        "type": "order.placed",
        "event_id": "ev-1",
        "customer_id": "c1",
        "occurred_at": START.isoformat(),
        "properties": {"order_id": "order-1", "total": 10.0},
    }
    for delay in (0.07, 0.07, 4.0, 7200.0):
        engines.handle(
            0, orjson.dumps({**event, "event_id": f"ev-{delay}"}), "t", START.timestamp() + delay
        )
    text = _scrape(engines)
    assert 'rapport_event_latency_seconds_bucket{le="0.05"} 0.0' in text
    assert 'rapport_event_latency_seconds_bucket{le="0.1"} 2.0' in text
    assert 'rapport_event_latency_seconds_bucket{le="5.0"} 3.0' in text
    assert 'rapport_event_latency_seconds_bucket{le="3600.0"} 3.0' in text
    assert 'rapport_event_latency_seconds_bucket{le="+Inf"} 4.0' in text
    assert "rapport_event_latency_seconds_count 4.0" in text
