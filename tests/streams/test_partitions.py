"""Engines of several partitions side by side, as a worker runs them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec

from rules.loader import load_rules
from state.stores.changelog import ChangelogProfileStore, into
from streams.partitions import PartitionEngines
from tests.builders import IMMEDIATE
from tests.rules.journey_builders import sends
from tests.rules.test_coupon_pools import _rules

NOW = 1.9e9


def _lines(customer: str, day: int) -> list[bytes]:
    stamp = f"2026-01-{day:02}T10:00:00Z"  # day: the customer's number + 1
    return [
        msgspec.json.encode(
            {
                "type": "consent.updated",
                "event_id": f"{customer}-c",
                "customer_id": customer,
                "occurred_at": stamp,
                "properties": {"channel": "email", "granted": True},
            }
        ),
        msgspec.json.encode(
            {
                "type": "order.placed",
                "event_id": f"{customer}-o",
                "customer_id": customer,
                "occurred_at": stamp,
                "properties": {"order_id": f"{customer}-o", "total": 30},
            }
        ),
    ]


def _run(engines: PartitionEngines, customers: range) -> dict[int, list[str]]:
    """Each customer on partition number % 2; the pool codes each partition sent."""
    codes: dict[int, list[str]] = {0: [], 1: []}
    for number in customers:
        partition = number % 2
        for line in _lines(f"c{number}", 1 + number):
            handled = engines.handle(partition, line, "test", NOW)
            codes[partition] += [a.coupon.code for a in sends(handled.outputs) if a.coupon]
    # The clock to the day after the last order (not beyond: later orders would be late).
    moment = datetime(2026, 1, 2 + customers[-1], tzinfo=UTC).timestamp()
    for partition, fired in engines.tick(moment):
        codes[partition] += [a.coupon.code for a in sends(fired) if a.coupon]
    return codes


def test_partitions_take_disjoint_shares_of_a_pool_and_keep_them_across_a_restart(
    tmp_path: Path,
) -> None:
    pool = [f"SPRING-{n:04}" for n in range(60)]
    rules = load_rules(_rules(tmp_path, "\n".join(pool) + "\n"))
    table: dict[bytes, bytes] = {}

    def engines() -> PartitionEngines:
        return PartitionEngines(
            rules,
            config=IMMEDIATE,
            store_factory=lambda p: ChangelogProfileStore(p, table, into(table)),
            coupon_shares=2,
        )

    before = engines()
    first = _run(before, range(10))
    before.flush()
    after = engines()  # a restart: everything comes back from the table
    second = _run(after, range(10, 20))

    handed_out = [code for codes in (first, second) for part in codes.values() for code in part]
    assert len(handed_out) == 20
    assert len(set(handed_out)) == 20, "a code went out twice"
    shares = [set(first[p] + second[p]) for p in (0, 1)]
    assert not shares[0] & shares[1]
