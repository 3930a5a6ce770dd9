"""An erasure on the running worker: nothing of the customer is left in the state Rapport
keeps (its table and changelog, Redis), and the audit record names no one."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from redis import Redis

from state.stores.codec import ProfileCodec
from tests.integration.kafka_io import produce, read_topic
from tests.integration.test_worker import _latest
from tests.integration.worker_process import WorkerProcess, worker_env
from tests.servers import Server

pytestmark = pytest.mark.integration

CUSTOMER, VISITOR, EMAIL = "cust-erase-1", "visitor-77", "jane.doe@example.com"
TRACES = (CUSTOMER.encode(), VISITOR.encode(), b"jane.doe")


def _event(kind: str, minutes: int, customer: str | None, **props: Any) -> bytes:
    record: dict[str, Any] = {
        "type": kind,
        "event_id": f"{kind}-{customer}-{minutes}",
        "occurred_at": f"2026-03-02T{9 + minutes // 60:02d}:{minutes % 60:02d}:00Z",
        "properties": props,
    }
    if customer is not None:
        record["customer_id"] = customer
    if (kind == "customer.registered" and customer == CUSTOMER) or customer is None:
        record["anonymous_id"] = VISITOR
    return msgspec.json.encode(record)


BEFORE = [
    _event("product.viewed", 0, None, product_id="p1", category="shoes", price=40.0),
    _event("customer.registered", 10, CUSTOMER, email=EMAIL, country="DE"),
    _event("consent.updated", 20, CUSTOMER, channel="email", granted=True),
    _event("order.placed", 30, CUSTOMER, order_id="o1", total=80.0),
    _event("cart.item_added", 40, CUSTOMER, cart_id="k1", product_id="p1", quantity=1, price=40.0),
    _event("customer.registered", 50, "keeper"),
    _event("product.viewed", 120, "keeper", product_id="p2", category="bags", price=10.0),
]
AFTER = [
    _event("customer.erasure_requested", 180, CUSTOMER),
    _event("product.viewed", 240, "keeper", product_id="p3", category="bags", price=10.0),
]


def _redis_dump(redis: Server, prefix: str) -> dict[bytes, bytes]:
    """Every key under ``prefix`` with its value as bytes, whatever its type."""
    client = Redis(host="127.0.0.1", port=redis.port)
    found: dict[bytes, bytes] = {}
    for key in client.keys(f"{prefix}*"):
        kind = client.type(key)
        value: bytes
        if kind == b"string":
            got = client.get(key) or b""
            value = got if isinstance(got, bytes) else got.encode()
        elif kind == b"hash":
            value = repr(sorted(client.hgetall(key).items())).encode()
        elif kind == b"set":
            value = repr(sorted(client.smembers(key))).encode()
        else:
            value = str(kind).encode()
        found[key if isinstance(key, bytes) else key.encode()] = value
    return found


def _traces(blob: bytes, extra: tuple[bytes, ...] = ()) -> list[bytes]:
    return [trace for trace in TRACES + extra if trace in blob]


def test_an_erasure_leaves_nothing_of_the_customer_in_redis_or_the_table(
    broker: Server, redis: Server, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    env = worker_env(
        broker.address,
        redis.address,
        prefix,
        1,
        worker__clock="events",  # runs stay open: the wall clock would finish them at once
        engine__allowed_lateness="0s",
    )
    worker = WorkerProcess(tmp_path, env)
    changelog_topic = f"{prefix.rstrip('.')}-profiles-changelog"
    try:
        worker.wait_ready()
        produce(broker.address, f"{prefix}events", BEFORE)
        actions = read_topic(
            broker.address,
            f"{prefix}actions",
            until=lambda r: any(b'"cart_reminder"' in x.value for x in r) or worker.exited,
        )
        action_ids = tuple(
            msgspec.json.decode(r.value).get("action_id", "").encode()
            for r in actions
            if CUSTOMER.encode() in r.value
        )
        assert any(action_ids), worker.log()[-3000:]
        before = b"\n".join(k + b"=" + v for k, v in _redis_dump(redis, prefix).items())
        assert CUSTOMER.encode() in before  # the read model and the claims list
        assert any(i in before for i in action_ids if i)  # the claims are there

        produce(broker.address, f"{prefix}events", AFTER)
        audit = read_topic(broker.address, f"{prefix}audit", until=lambda r: len(r) >= 1)
        changelog = read_topic(
            broker.address,
            changelog_topic,
            until=lambda r: any(x.key and CUSTOMER.encode() in x.key and not x.value for x in r),
        )
    finally:
        worker.stop()

    redis_now = _redis_dump(redis, prefix)
    left = b"\n".join(k + b"=" + v for k, v in redis_now.items())
    assert _traces(left, tuple(i for i in action_ids if i)) == []
    assert f"{prefix}profile:keeper".encode() in redis_now

    table = _latest(changelog)
    codec = ProfileCodec()  # profiles are stored compressed: look inside them
    readable = {
        key: msgspec.json.encode(codec.decode(value)) if b":p:" in key else value
        for key, value in table.items()
    }
    assert [key for key in readable if _traces(key + b"=" + readable[key])] == []
    assert b"0:p:keeper" in table

    (record,) = audit
    fields = msgspec.json.decode(record.value)
    assert (fields["reason"], fields["profiles"], fields["visitors"]) == ("request", 1, 1)
    assert fields["journey_runs"] == 2  # cart recovery and the review request, both open
    assert _traces(record.value + (record.key or b"")) == []
