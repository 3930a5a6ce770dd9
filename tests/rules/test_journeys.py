"""Journey semantics, one behaviour per test, on small hand-written streams."""

from pathlib import Path

from engine import Engine
from rules.actions import Action
from tests.builders import added, at, event, ordered
from tests.rules.journey_builders import (
    CART_RECOVERY,
    OPEN_POLICIES,
    consent,
    journey_engine,
    milestones,
    rules_dir,
    sends,
)


def _run(engine: Engine, *events: object, until: float) -> list[object]:
    outputs: list[object] = []
    for item in events:
        outputs += engine.apply(item)  # type: ignore[arg-type]
    outputs += engine.advance(until)
    return outputs


def test_cart_reminder_goes_out_an_hour_after_the_cart_is_left(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(engine, consent(when=at(0)), added("k1", when=at(1)), until=at(1, 2).timestamp())
    (reminder,) = sends(out)
    assert (reminder.template, reminder.entity, reminder.at) == (
        "cart_reminder",
        "k1",
        at(1, 1).timestamp(),
    )
    assert reminder.payload == {"cart": "k1"}
    assert [m.entity for m in milestones(out, "entered")] == ["k1"]


def test_order_of_that_cart_cancels_the_pending_reminder_at_once(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(
        engine,
        consent(when=at(0)),
        added("k1", when=at(1)),
        ordered("o1", cart="k1", when=at(1, 0, 30)),
        until=at(5).timestamp(),
    )
    assert sends(out, status=None) == []
    (exited,) = milestones(out, "exited")
    assert exited.at == at(1, 0, 30).timestamp()


def test_order_of_another_cart_leaves_the_reminder_in_place(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(
        engine,
        consent(when=at(0)),
        added("k1", when=at(1)),
        ordered("o1", cart="k2", when=at(1, 0, 30)),
        until=at(1, 2).timestamp(),
    )
    assert [a.entity for a in sends(out)] == ["k1"]


def test_order_naming_no_cart_ends_the_recovery_of_the_open_carts(tmp_path: Path) -> None:
    """Segment's Order Completed has no cart_id, and neither do many shops' orders: the
    customer must not get the reminder and the coupon after buying."""
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(
        engine,
        consent(when=at(0)),
        added("k1", when=at(1)),
        ordered("o1", when=at(1, 0, 30)),
        until=at(5).timestamp(),
    )
    assert sends(out, status=None) == []
    (exited,) = milestones(out, "exited")
    assert (exited.entity, exited.at) == ("k1", at(1, 0, 30).timestamp())
    (converted,) = milestones(out, "converted")
    assert converted.entity == "k1"


def test_order_naming_no_cart_ends_the_implicit_cart_of_a_segment_stream(
    tmp_path: Path,
) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(
        engine,
        consent(when=at(0)),
        added("implicit:c1", when=at(1)),
        ordered("o1", when=at(1, 0, 30)),
        added("implicit:c1", product="p2", when=at(2)),
        until=at(5).timestamp(),
    )
    assert sends(out, status=None) == []  # and the closed cart does not open again


def test_second_message_carries_a_coupon_valid_for_its_window(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(engine, consent(when=at(0)), added("k1", when=at(1)), until=at(3).timestamp())
    first, second = sends(out)
    assert second.template == "cart_coupon"
    assert second.coupon is not None
    assert second.coupon.percent == 10
    assert second.coupon.valid_until == second.at + 48 * 3600
    assert first.action_id != second.action_id


def test_send_without_consent_is_suppressed_with_the_reason(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(engine, added("k1", when=at(1)), until=at(1, 2).timestamp())
    (action,) = sends(out, status=None)
    assert (action.status, action.reason) == ("suppressed", "no_consent")


def test_unsubscribe_before_the_send_stops_it(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(
        engine,
        consent(when=at(0)),
        added("k1", when=at(1)),
        consent(granted=False, when=at(1, 0, 10)),
        until=at(1, 2).timestamp(),
    )
    (action,) = sends(out, status=None)
    assert action.reason == "no_consent"


def test_holdout_customers_run_the_journey_with_sends_suppressed(tmp_path: Path) -> None:
    journey = CART_RECOVERY.replace("reentry:", "holdout: 0.5\nreentry:")
    engine = journey_engine(rules_dir(tmp_path, [journey]))
    statuses = {}
    for n in range(40):
        customer = f"c{n}"
        day = 3 * n  # one engine, time moving on: each customer after the last
        out = _run(
            engine,
            consent(customer=customer, when=at(day)),
            added(f"k{n}", customer=customer, when=at(day + 1)),
            until=at(day + 1, 2).timestamp(),
        )
        (action,) = [
            a
            for a in sends(out, status=None)
            if a.profile_key == customer and a.template == "cart_reminder"
        ]
        statuses[customer] = (action.arm, action.status, action.reason)
    held = [s for s in statuses.values() if s[0] == "holdout"]
    assert 5 < len(held) < 35
    assert all(s == ("holdout", "suppressed", "holdout") for s in held)
    assert all(s == ("main", "sent", None) for s in statuses.values() if s[0] == "main")


def test_send_in_quiet_hours_is_deferred_to_the_end_of_the_window(tmp_path: Path) -> None:
    policies = OPEN_POLICIES + 'quiet_hours: {start: "21:00", end: "08:00"}\n'
    engine = journey_engine(rules_dir(tmp_path, policies=policies))
    # 22:30 in Berlin (21:30 UTC): the reminder falls due at 23:30 local.
    out = _run(
        engine,
        consent(when=at(0)),
        event("customer.updated", time_zone="Europe/Berlin", when=at(0)),
        added("k1", when=at(1, 12, 30)),
        until=at(2, 12).timestamp(),
    )
    deferred, sent = sends(out, status=None)[:2]
    assert (deferred.status, deferred.reason) == ("deferred", "quiet_hours")
    assert deferred.retry_at == at(1, 22).timestamp()  # 08:00 Berlin = 07:00 UTC next day
    assert (sent.status, sent.at, sent.action_id) == ("sent", deferred.retry_at, deferred.defers)


def test_frequency_cap_defers_or_drops_as_the_journey_says(tmp_path: Path) -> None:
    hello = """
id: hello_{n}
priority: {priority}
on_cap: {on_cap}
trigger: {{event: customer.registered}}
steps:
  - send: {{channel: email, template: hello}}
"""
    policies = OPEN_POLICIES + "frequency_caps:\n  - {channel: email, max: 1, per: 1d}\n"
    journeys = [
        hello.format(n=1, priority=90, on_cap="drop"),
        hello.format(n=2, priority=10, on_cap="drop"),
        hello.format(n=3, priority=50, on_cap="defer"),
    ]
    engine = journey_engine(rules_dir(tmp_path, journeys, policies))
    out = _run(
        engine,
        consent(when=at(0)),
        event("customer.registered", when=at(1)),
        until=at(3).timestamp(),
    )
    by_journey = {(a.journey_id, a.status, a.reason) for a in sends(out, status=None)}
    assert by_journey == {
        ("hello_1", "sent", None),  # highest priority goes first
        ("hello_3", "deferred", "frequency_cap"),
        ("hello_2", "suppressed", "frequency_cap"),
        ("hello_3", "sent", None),  # a day later, when the window frees up
    }


def test_order_within_the_goal_window_counts_as_a_conversion(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(
        engine,
        consent(when=at(0)),
        added("k1", when=at(1)),
        ordered("o1", cart="k1", when=at(2)),
        until=at(5).timestamp(),
    )
    (converted,) = milestones(out, "converted")
    assert converted.at == at(2).timestamp()


def test_cooldown_keeps_a_customer_from_entering_again_too_soon(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(
        engine,
        consent(when=at(0)),
        added("k1", when=at(1)),
        event("cart.cleared", cart_id="k1", when=at(1, 0, 10)),
        added("k2", when=at(2)),
        added("k3", when=at(9)),
        until=at(12).timestamp(),
    )
    assert [m.entity for m in milestones(out, "entered")] == ["k1", "k3"]


def test_cart_below_the_trigger_value_starts_nothing(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(
        engine, consent(when=at(0)), added("k1", price=5.0, when=at(1)), until=at(3).timestamp()
    )
    assert [item for item in out if isinstance(item, Action)] == []
    assert milestones(out, "entered") == []


def test_branch_skips_to_the_named_step(tmp_path: Path) -> None:
    journey = """
id: big_orders
trigger: {event: order.placed}
steps:
  - branch: {when: "event.total >= 100", goto: vip}
  - send: {channel: email, template: hello}
  - exit: true
  - id: vip
    tag: big_order_customer
"""
    engine = journey_engine(rules_dir(tmp_path, [journey]))
    out = _run(
        engine, consent(when=at(0)), ordered("o1", 150.0, when=at(1)), until=at(2).timestamp()
    )
    assert sends(out, status=None) == []
    profile = engine.store.get("c1")
    assert profile is not None
    assert "big_order_customer" in profile.tags


def test_order_at_the_very_moment_the_reminder_is_due_cancels_it(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(
        engine,
        consent(when=at(0)),
        added("k1", when=at(1)),
        ordered("o1", cart="k1", when=at(1, 1)),
        until=at(2).timestamp(),
    )
    assert sends(out, status=None) == []


def test_cart_left_before_login_is_recovered_for_the_customer(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(
        engine,
        consent(when=at(0)),
        added("k1", customer=None, anonymous="a1", when=at(1)),
        event("customer.identified", customer="c1", anonymous="a1", when=at(1, 0, 5)),
        until=at(1, 2).timestamp(),
    )
    (reminder,) = sends(out)
    assert (reminder.profile_key, reminder.customer_id, reminder.entity) == ("c1", "c1", "k1")


def test_variants_split_customers_and_swap_the_template(tmp_path: Path) -> None:
    journey = """
id: hello
trigger: {event: customer.registered}
variants:
  - {id: plain, weight: 1}
  - {id: fancy, weight: 1, templates: {hello: cart_reminder}}
steps:
  - send: {channel: email, template: hello}
"""
    engine = journey_engine(rules_dir(tmp_path, [journey]))
    arms: dict[str, set[str | None]] = {}
    for n in range(40):
        customer = f"c{n}"
        day = 3 * n  # one engine, time moving on: each customer after the last
        out = _run(
            engine,
            consent(customer=customer, when=at(day)),
            event("customer.registered", customer=customer, when=at(day + 1)),
            until=at(day + 2).timestamp(),
        )
        (action,) = sends(out)
        arms.setdefault(action.arm, set()).add(action.template)
    assert arms == {"plain": {"hello"}, "fancy": {"cart_reminder"}}


def test_emit_step_puts_out_an_event_with_its_payload(tmp_path: Path) -> None:
    journey = """
id: notify
trigger: {event: order.placed, when: "event.total >= 100"}
steps:
  - emit: {event: crm.big_order, payload: {order: event.order_id, tier: tier}}
"""
    engine = journey_engine(rules_dir(tmp_path, [journey]))
    out = _run(engine, ordered("o9", 150.0, when=at(1)), until=at(2).timestamp())
    (emitted,) = [a for a in sends(out) if a.kind == "emit"]
    assert (emitted.event, emitted.payload) == ("crm.big_order", {"order": "o9", "tier": "member"})


def test_late_event_starts_no_journey(tmp_path: Path) -> None:
    from engine import EngineConfig

    engine = journey_engine(rules_dir(tmp_path), EngineConfig(allowed_lateness_seconds=3600))
    out = _run(
        engine,
        consent(when=at(0)),
        event("product.viewed", product_id="p", when=at(3)),
        added("k1", when=at(1)),  # two days behind the newest event: late
        until=at(5).timestamp(),
    )
    assert milestones(out, "entered") == []
    assert engine.stats.late == 1


def test_a_cart_whose_messages_went_out_does_not_start_again_when_an_item_is_added_later(
    tmp_path: Path,
) -> None:
    """Send once means once: past the cooldown, the same cart gets no second reminder and
    no second coupon (its run finished)."""
    engine = journey_engine(rules_dir(tmp_path))
    out = _run(
        engine,
        consent(when=at(0)),
        added("k1", when=at(1)),
        added("k1", product="p2", when=at(10)),  # nine days later: past the 7-day cooldown
        until=at(20).timestamp(),
    )
    assert [a.template for a in sends(out)] == ["cart_reminder", "cart_coupon"]
    assert len(milestones(out, "entered")) == 1


def test_a_journey_that_allows_the_same_entity_again_starts_it_again(tmp_path: Path) -> None:
    journey = CART_RECOVERY.replace(
        "reentry: {cooldown: 7d}", "reentry: {cooldown: 7d, same_entity: true}"
    )
    engine = journey_engine(rules_dir(tmp_path, [journey]))
    out = _run(
        engine,
        consent(when=at(0)),
        added("k1", when=at(1)),
        added("k1", product="p2", when=at(10)),
        until=at(20).timestamp(),
    )
    assert [a.template for a in sends(out)] == ["cart_reminder", "cart_coupon"] * 2


def test_cart_names_in_a_payload_read_the_runs_cart_not_the_newest_one(tmp_path: Path) -> None:
    journey = CART_RECOVERY.replace(
        "payload: {cart: event.cart_id}", "payload: {cart: event.cart_id, value: cart_value}"
    ).replace("reentry: {cooldown: 7d}\n", "")  # a second cart may start its own run
    engine = journey_engine(rules_dir(tmp_path, [journey]))
    out = _run(
        engine,
        consent(when=at(0)),
        added("k1", price=50.0, when=at(1)),
        added("k2", price=30.0, when=at(1, 0, 10)),  # touched last: the "open cart"
        until=at(1, 2).timestamp(),
    )
    reminders = {a.entity: a.payload for a in sends(out)}
    assert reminders == {"k1": {"cart": "k1", "value": 50.0}, "k2": {"cart": "k2", "value": 30.0}}
