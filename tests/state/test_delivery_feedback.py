"""Delivery feedback on the profile: reach and engagement per channel, unreachable after a
hard bounce or complaint until the address changes, consent withdrawn by an unsubscribe;
and the send gate acting on it."""

from __future__ import annotations

import itertools
from typing import Any

from engine import Engine, EngineConfig
from rules.actions import Action
from rules.loader import DEFAULT_RULES_DIR, load_rules
from rules.profile_view import PROFILE_GETTERS
from state.identity import merge_profiles
from state.profile import Profile
from state.reducers import apply_event
from state.stores import MemoryProfileStore
from tests.builders import added, at, event


def _fold(*events: object) -> Profile:
    profile = Profile(key="c1", customer_id="c1")
    for item in events:
        apply_event(profile, item)  # type: ignore[arg-type]
    return profile


def _message(kind: str, when: float = 0, channel: str = "email", **properties: Any) -> object:
    return event(f"message.{kind}", when=at(when), channel=channel, action_id="a1", **properties)


def test_deliveries_opens_and_clicks_are_counted_per_channel() -> None:
    profile = _fold(
        _message("delivered", 0),
        _message("opened", 1),
        _message("clicked", 2, url="https://shop.example/cart/k1"),
        _message("delivered", 3, channel="sms"),
    )
    email, sms = profile.reach["email"], profile.reach["sms"]
    assert (email.delivered, email.opened, email.clicked) == (1, 1, 1)
    assert email.last_engaged_at == at(2).timestamp()
    assert (sms.delivered, sms.opened) == (1, 0)
    assert PROFILE_GETTERS["messages_clicked"](profile) == 1
    assert PROFILE_GETTERS["messages_delivered"](profile) == 2


def test_a_hard_bounce_or_a_complaint_makes_the_channel_unreachable_a_soft_bounce_does_not() -> (
    None
):
    assert _fold(_message("bounced", 0, bounce="soft")).reachable("email")
    assert not _fold(_message("bounced", 0, bounce="hard", reason="550 no such user")).reachable(
        "email"
    )
    complained = _fold(_message("complained", 0))
    assert not complained.reachable("email")
    assert complained.reach["email"].unreachable_reason == "complaint"
    assert complained.reachable("sms")


def test_a_new_address_after_the_bounce_reaches_again_but_not_one_given_before() -> None:
    bounce = _message("bounced", 1, bounce="hard")
    before = event("customer.updated", when=at(0), email="old@example.com")
    after = event("customer.updated", when=at(2), email="new@example.com")
    assert not _fold(before, bounce).reachable("email")
    assert _fold(bounce, after).reachable("email")
    assert _fold(after, bounce).reachable("email")  # arrival order does not matter


def test_an_unsubscribe_withdraws_the_channels_consent() -> None:
    profile = _fold(
        event("consent.updated", when=at(0), channel="email", granted=True),
        _message("unsubscribed", 1),
    )
    assert not profile.has_consent("email")
    regranted = _fold(
        _message("unsubscribed", 1),
        event("consent.updated", when=at(2), channel="email", granted=True),
    )
    assert regranted.has_consent("email")


def test_feedback_folds_to_the_same_profile_in_any_order_and_across_a_merge() -> None:
    events = [
        _message("delivered", 0),
        _message("opened", 1),
        _message("bounced", 2, bounce="hard"),
        event("customer.updated", when=at(3), email="new@example.com"),
        _message("clicked", 4),
    ]
    reference = _fold(*events).reach
    for order in itertools.permutations(events):
        assert _fold(*order).reach == reference
    first, second = _fold(*events[:2]), _fold(*events[2:])
    merged = merge_profiles(first, second)
    assert merged.reach["email"].delivered == 1
    assert merged.reach["email"].clicked == 1
    assert merged.reachable("email")


def test_sends_to_an_unreachable_channel_are_suppressed_with_the_reason() -> None:
    engine = Engine(
        MemoryProfileStore(),
        load_rules(DEFAULT_RULES_DIR),
        config=EngineConfig(allowed_lateness_seconds=0),
    )
    outputs: list[object] = []
    for item in (
        event("consent.updated", when=at(), channel="email", granted=True),
        _message("complained", 0.001),
        added("k1", "p1", price=30.0, when=at(0, 1)),
    ):
        outputs += engine.apply(item)  # type: ignore[arg-type]
    outputs += engine.finish(at(0, 3).timestamp())
    sends = [o for o in outputs if isinstance(o, Action) and o.kind == "send"]
    assert sends[0].status == "suppressed"
    assert sends[0].reason == "unreachable"


def test_feedback_is_counted_per_channel_in_the_kpis_with_rates() -> None:
    from state.kpis import KpiTally

    tally, profile = KpiTally(), Profile(key="c1", customer_id="c1")
    for item in (
        _message("delivered", 0),
        _message("delivered", 0.1),
        _message("bounced", 0.2, bounce="hard"),
        _message("opened", 0.3),
        _message("clicked", 0.4),
        _message("delivered", 0.5, channel="sms"),
    ):
        mark = tally.before(profile, item, 0.0)  # type: ignore[arg-type]
        apply_event(profile, item)  # type: ignore[arg-type]
        tally.after(profile, item, mark)  # type: ignore[arg-type]
    summary = tally.counts.message_summary()
    assert summary["email"]["delivered"] == 2
    assert summary["email"]["open_rate"] == 0.5
    assert summary["email"]["click_rate"] == 0.5
    assert summary["email"]["bounce_rate"] == round(1 / 3, 4)
    assert summary["sms"]["delivered"] == 1
    assert "push" not in summary


def test_feedback_per_journey_is_counted_and_senders_cannot_grow_the_labels() -> None:
    from state.kpis import MAX_JOURNEY_LABELS, KpiTally

    tally, profile = KpiTally(), Profile(key="c1", customer_id="c1")
    items = [_message("delivered", 0, journey_id="cart_recovery")]
    items += [_message("opened", 0.1, journey_id="cart_recovery")]
    items += [
        _message("delivered", 0.2, journey_id=f"made-up-{n}") for n in range(MAX_JOURNEY_LABELS + 5)
    ]
    for item in items:
        mark = tally.before(profile, item, 0.0)  # type: ignore[arg-type]
        apply_event(profile, item)  # type: ignore[arg-type]
        tally.after(profile, item, mark)  # type: ignore[arg-type]
    journeys = tally.counts.journey_message_summary()
    assert journeys["cart_recovery"]["email"]["open_rate"] == 1.0
    assert len(journeys) == MAX_JOURNEY_LABELS + 1  # the first 64 names, then "other"
    assert journeys["other"]["email"]["delivered"] == 6


def test_message_feedback_is_not_the_customers_activity() -> None:
    order = event("order.placed", when=at(0), order_id="o1", total=30.0)
    profile = _fold(order, _message("delivered", 50), _message("opened", 51))
    assert profile.last_seen_at == at(0).timestamp()  # win-back and retention still count
    assert profile.reach["email"].opened == 1
    only_feedback = _fold(_message("delivered", 5))
    assert only_feedback.last_seen_at == at(5).timestamp()  # retention has a clock to end it


def test_a_customer_who_only_gets_newsletters_is_won_back() -> None:
    engine = Engine(
        MemoryProfileStore(),
        load_rules(DEFAULT_RULES_DIR),
        config=EngineConfig(allowed_lateness_seconds=0),
    )
    outputs: list[object] = []
    items: list[Any] = [
        event("consent.updated", when=at(), channel="email", granted=True),
        event("order.placed", when=at(0, 1), order_id="o1", total=30.0),
    ]
    items += [_message("delivered", day) for day in range(14, 60, 14)]
    for item in items:
        outputs += engine.apply(item)
    outputs += engine.finish(at(60).timestamp())
    sends = [o for o in outputs if isinstance(o, Action) and o.journey_id == "win_back"]
    assert sends, "the newsletter's deliveries held off the win-back"
