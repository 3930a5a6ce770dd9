"""Replaying the real UCI Online Retail log reconciles with an independent computation."""

import csv
import gzip
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine import Engine
from rules.loader import RuleSet
from schemas.decode import DeadLetter, Ignored
from schemas.limits import DEFAULT_MAX_RECORD_BYTES
from state.stores import MemoryProfileStore
from streams.sources.online_retail import read_online_retail

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "online_retail.csv.gz"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DATA.exists(), reason="needs ../shared/data"),
]


def _independent() -> tuple[
    dict[str, set[str]], dict[str, float], dict[str, set[str]], dict[str, float]
]:
    orders: dict[str, set[str]] = defaultdict(set)
    revenue: dict[str, float] = defaultdict(float)
    returns: dict[str, set[str]] = defaultdict(set)
    refunded: dict[str, float] = defaultdict(float)
    with gzip.open(DATA, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            customer = row["CustomerID"].removesuffix(".0")
            if not customer:
                continue
            amount = float(row["Quantity"]) * float(row["UnitPrice"])
            if row["InvoiceNo"].startswith("C"):
                returns[customer].add(row["InvoiceNo"])
                refunded[customer] -= amount
            else:
                orders[customer].add(row["InvoiceNo"])
                revenue[customer] += amount
    return orders, revenue, returns, refunded


def test_orders_revenue_and_refunds_per_customer_match_the_csv() -> None:
    engine = Engine(MemoryProfileStore(), RuleSet.empty())
    dead: list[DeadLetter] = []
    with DATA.open("rb") as raw, gzip.GzipFile(fileobj=raw) as stream:
        latest = datetime(2026, 1, 1, tzinfo=UTC)
        for item in read_online_retail(stream, str(DATA), latest, DEFAULT_MAX_RECORD_BYTES):  # type: ignore[arg-type]
            if isinstance(item, DeadLetter):
                dead.append(item)
            elif not isinstance(item, Ignored):
                engine.apply(item)
    engine.finish(engine.newest_event_time)
    orders, revenue, returns, refunded = _independent()
    customers = set(orders) | set(returns)
    assert len(customers) == 4372
    for customer in customers:
        profile = engine.store.get(customer)
        assert profile is not None, customer
        invoices = len(orders[customer]) + len(returns[customer])
        assert profile.orders.count == len(orders[customer]), customer
        assert profile.orders.refund_count == len(returns[customer]), customer
        assert abs(profile.orders.revenue - revenue[customer]) <= 0.005 * invoices + 1e-6, customer
        assert (
            abs(profile.orders.refunded_amount - refunded[customer]) <= 0.005 * invoices + 1e-6
        ), customer
    reasons = [letter.detail for letter in dead]
    assert sum("bad-debt" in r for r in reasons) == 3
    assert sum("stock adjustment" in r for r in reasons) == 1336
    assert len(dead) == 1339
    guests = [key for key in engine.store.sorted_keys() if key.startswith("anon:guest-")]
    assert guests, "rows without CustomerID become guest orders"
