"""A visitor homed on one partition identifies as a customer homed on another.

Each test runs the same events through one engine (replay, the oracle) and through
partition engines that reach each other only through identity records, and pins down
that both end the same: the same actions, the same profiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

from engine import Engine, Output
from rules.actions import Action
from rules.loader import RuleSet, load_rules
from schemas import events as ev
from state.handoff import Handoff, HandoffRequest, encode_internal
from state.stores import MemoryProfileStore
from streams.generator import GeneratorConfig, generate_stream
from streams.partitions import PartitionEngines
from tests.builders import IMMEDIATE, added, at, event, ordered, viewed
from tests.streams.exchange import Exchange, keys_on_different_partitions

PARTITIONS = 4
RULES = load_rules(Path(__file__).parents[2] / "rules")
(C1, C2), (A1, A2) = keys_on_different_partitions(PARTITIONS)
END = at(days=5).timestamp()
_ENCODER = msgspec.json.Encoder()


def _engines(rules: RuleSet = RULES, config: object = IMMEDIATE) -> PartitionEngines:
    return PartitionEngines(rules, config=config, partitions=PARTITIONS)  # type: ignore[arg-type]


def _replay(events: Sequence[ev.Event], config: object = IMMEDIATE) -> Engine:
    engine = Engine(MemoryProfileStore(), RULES, config=config)  # type: ignore[arg-type]
    for item in events:
        engine.apply(item)
    engine.finish(END)
    return engine


def _actions(outputs: Sequence[Output]) -> list[tuple[str, str, str, str | None]]:
    return sorted(
        (a.action_id, a.profile_key, a.status, a.template) for a in outputs if isinstance(a, Action)
    )


def _registered(customer: str, minutes: float = 0) -> list[ev.Event]:
    return [
        event(
            "customer.registered",
            at(minutes=minutes),
            customer=customer,
            email=f"{customer}@example.com",
            time_zone="UTC",
        ),
        event(
            "consent.updated",
            at(minutes=minutes + 1),
            customer=customer,
            channel="email",
            granted=True,
        ),
    ]


def _identified(customer: str, visitor: str, minutes: float) -> ev.Event:
    return event("customer.identified", at(minutes=minutes), customer=customer, anonymous=visitor)


def _visitor_cart(visitor: str, minutes: float, cart: str = "k1") -> list[ev.Event]:
    return [
        viewed(when=at(minutes=minutes), customer=None, anonymous=visitor),
        added(cart, price=60.0, when=at(minutes=minutes + 1), customer=None, anonymous=visitor),
    ]


def _both(events: list[ev.Event], delay: int = 0) -> tuple[Engine, Exchange]:
    """The events through one engine and through partition engines, both to ``END``."""
    replay = _replay(events)
    exchange = Exchange(_engines(), delay=delay).feed(events)
    exchange.finish(END)
    return replay, exchange


def _assert_same(replay: Engine, exchange: Exchange, outputs: Sequence[Output]) -> None:
    assert _actions(exchange.outputs) == _actions(outputs)
    store = replay.store
    want = {key: _ENCODER.encode(store.get(key)) for key in store.sorted_keys()}
    got = {key: _ENCODER.encode(p) for key, p in exchange.profiles().items()}
    assert got == want


def _replay_outputs(events: Sequence[ev.Event]) -> tuple[Engine, list[Output]]:
    engine = Engine(MemoryProfileStore(), RULES, config=IMMEDIATE)
    outputs: list[Output] = []
    for item in events:
        outputs.extend(engine.apply(item))
    outputs.extend(engine.finish(END))
    return engine, outputs


@pytest.mark.parametrize("delay", [0, 3])
def test_a_cart_left_before_login_is_recovered_for_the_customer_homed_elsewhere(
    delay: int,
) -> None:
    events = [*_registered(C1), *_visitor_cart(A1, 10), _identified(C1, A1, 20)]
    replay, outputs = _replay_outputs(events)
    exchange = Exchange(_engines(), delay=delay).feed(events)
    exchange.finish(END)

    _assert_same(replay, exchange, outputs)
    sent = [a for a in exchange.outputs if isinstance(a, Action) and a.template]
    assert {a.profile_key for a in sent} == {C1}, "the reminder goes to the customer"
    assert exchange.internal_sent == 2, "one request, one handoff"
    visitor_home = exchange.engine(exchange.engines.route_key("anon:" + A1))
    assert visitor_home.store.get("anon:" + A1) is None
    assert visitor_home.store.resolve("anon:" + A1) == C1
    profile = exchange.profiles()[C1]
    assert "k1" in profile.carts
    assert profile.anonymous_ids == [A1]
    assert not profile.awaiting


def test_an_order_placed_before_the_visitor_arrives_waits_and_closes_the_moved_cart() -> None:
    # The request and the handoff take three further records each: the order is read on
    # the customer's partition while the cart is still on its way.
    events = [
        *_registered(C1),
        *_visitor_cart(A1, 10),
        _identified(C1, A1, 20),
        ordered("o1", 60.0, cart="k1", when=at(minutes=25), customer=C1),
        *_registered(C2, 30),
        viewed(when=at(minutes=31), customer=C2),
        viewed(when=at(minutes=32), customer=C2),
    ]
    replay, outputs = _replay_outputs(events)
    exchange = Exchange(_engines(), delay=3).feed(events)
    customer_home = exchange.engine(exchange.engines.route_key(C1))
    assert customer_home.parked_events >= 1 or exchange.profiles()[C1].orders.count == 1
    exchange.finish(END)

    _assert_same(replay, exchange, outputs)
    assert not [a for a in exchange.outputs if isinstance(a, Action) and a.template]
    assert exchange.profiles()[C1].orders.count == 1


def test_a_visitor_event_read_after_the_link_is_forwarded_to_the_customer() -> None:
    events = [
        *_registered(C1),
        *_visitor_cart(A1, 10),
        _identified(C1, A1, 20),
        viewed("p9", when=at(minutes=40), customer=None, anonymous=A1),
    ]
    replay, outputs = _replay_outputs(events)
    exchange = Exchange(_engines()).feed(events)
    exchange.finish(END)

    _assert_same(replay, exchange, outputs)
    assert exchange.engine(exchange.engines.route_key("anon:" + A1)).stats.forwarded == 1
    assert [v.product_id for v in exchange.profiles()[C1].recent_views] == ["p1", "p9"]


def test_a_second_identification_of_the_same_visitor_moves_nothing_twice() -> None:
    events = [
        *_registered(C1),
        *_visitor_cart(A1, 10),
        _identified(C1, A1, 20),
        *_registered(C2, 30),
        _identified(C2, A1, 40),  # the same browser logs in as someone else
        viewed("p9", when=at(minutes=50), customer=None, anonymous=A1),
    ]
    replay, outputs = _replay_outputs(events)
    exchange = Exchange(_engines(), delay=2).feed(events)
    exchange.finish(END)

    _assert_same(replay, exchange, outputs)
    assert exchange.profiles()[C1].event_counts["cart.item_added"] == 1
    assert exchange.profiles()[C2].event_counts["product.viewed"] == 1


def test_erasing_the_customer_makes_the_visitors_home_forget_the_link() -> None:
    events = [
        *_registered(C1),
        *_visitor_cart(A1, 10),
        _identified(C1, A1, 20),
        event("customer.erasure_requested", at(minutes=30), customer=C1),
    ]
    replay, outputs = _replay_outputs(events)
    exchange = Exchange(_engines()).feed(events)
    exchange.finish(END)

    _assert_same(replay, exchange, outputs)
    visitor_home = exchange.engine(exchange.engines.route_key("anon:" + A1)).store
    assert visitor_home.resolve("anon:" + A1) == "anon:" + A1
    assert C1 not in exchange.profiles()


def test_a_handoff_read_before_its_identifying_event_is_applied_again_is_kept_for_it() -> None:
    # After a restart the customer's partition reads the identifying event again, and may
    # read the handoff (answered before the crash) first: it must be used, not dropped.
    engines = _engines(config=None)
    customer_home = engines.route_key(C1)
    identify = _identified(C1, A1, 20)
    handoff = Handoff(
        anonymous_key="anon:" + A1,
        customer_key=C1,
        at=identify.occurred_at.timestamp(),
        cause=identify.event_id,
        profile=None,
    )
    visitor = Exchange(_engines()).feed(_visitor_cart(A1, 10)).profiles()["anon:" + A1]
    handoff = msgspec.structs.replace(handoff, profile=visitor)
    for item in _registered(C1):
        engines.handle(customer_home, _ENCODER.encode(item), "test", 1.9e9)
    engines.handle(customer_home, _ENCODER.encode(identify), "test", 1.9e9, position="i")
    assert engines.receive(customer_home, encode_internal(handoff), "id", "h").outputs == []
    outputs = engines.engine(customer_home).advance(END)

    assert not [o for o in outputs if isinstance(o, HandoffRequest)], "no second request"
    profile = engines.lookup(customer_home, C1)
    assert profile is not None
    assert "k1" in profile.carts
    assert not profile.awaiting
    assert {"i", "h"} <= set(engines.drain_done())


def test_a_handoff_nobody_asks_for_again_is_dropped_after_the_allowed_lateness() -> None:
    engines = _engines(config=None)
    customer_home = engines.route_key(C1)
    visitor = Exchange(_engines()).feed(_visitor_cart(A1, 10)).profiles()["anon:" + A1]
    handoff = Handoff(
        anonymous_key="anon:" + A1, customer_key=C1, at=at(minutes=20).timestamp(), cause="x"
    )
    handoff = msgspec.structs.replace(handoff, profile=visitor)
    engines.receive(customer_home, encode_internal(handoff), "id", "h")
    assert engines.drain_done() == []
    engines.engine(customer_home).advance(at(hours=3).timestamp())
    assert engines.drain_done() == ["h"]
    assert engines.engine(customer_home).stats.handoffs_dropped == 1


def test_a_record_on_the_identity_topic_that_engines_did_not_write_is_a_dead_letter() -> None:
    handled = _engines().receive(0, b'{"record":"gossip"}', "identity/0@7", "p")
    assert handled.dead_letters
    assert handled.dead_letters[0].reason == "invalid_internal"
    assert handled.dead_letters[0].source == "identity/0@7"


@pytest.mark.parametrize("delay", [0, 5])
def test_a_generated_stream_with_visitors_ends_as_replay_ends(delay: int) -> None:
    config = GeneratorConfig(customers=150, days=30, seed=11, anonymous_share=0.6, delayed=0.0)
    decoder = msgspec.json.Decoder(ev.Event)
    typed: list[ev.Event] = [decoder.decode(line) for line in generate_stream(config)]
    end = max(e.occurred_at.timestamp() for e in typed) + 86_400
    replay = Engine(MemoryProfileStore(), RULES)
    outputs: list[Output] = []
    for item in typed:
        outputs.extend(replay.apply(item))
    outputs.extend(replay.finish(end))
    exchange = Exchange(PartitionEngines(RULES, partitions=PARTITIONS), delay=delay)
    exchange.feed(typed)
    exchange.finish(end)

    assert replay.stats.merges > 10, "the stream must identify visitors"
    assert exchange.internal_sent > 10, "and some of them across partitions"
    assert _actions(exchange.outputs) == _actions(outputs)
    store = replay.store
    want = {key: _ENCODER.encode(store.get(key)) for key in store.sorted_keys()}
    got = {key: _ENCODER.encode(p) for key, p in exchange.profiles().items()}
    assert got.keys() == want.keys()
    assert got == want
