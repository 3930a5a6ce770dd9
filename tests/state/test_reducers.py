from state.identity import merge_profiles
from state.profile import Profile
from state.reducers import apply_event
from tests.builders import added, at, event, ordered, removed, viewed


def _fold(*events: object) -> Profile:
    profile = Profile(key="c1", customer_id="c1")
    for item in events:
        apply_event(profile, item)  # type: ignore[arg-type]
    return profile


def test_order_counts_revenue_and_average_order_value() -> None:
    profile = _fold(ordered("o1", 20.0, when=at(0)), ordered("o2", 40.0, when=at(1)))
    assert (profile.orders.count, profile.orders.revenue, profile.orders.average_order_value) == (
        2,
        60.0,
        30.0,
    )


def test_same_order_under_a_new_event_id_is_counted_once() -> None:
    profile = _fold(ordered("o1", 20.0), ordered("o1", 20.0))
    assert profile.orders.count == 1


def test_cancellation_without_amount_uses_the_order_total_even_if_it_arrives_first() -> None:
    profile = _fold(
        event("order.cancelled", when=at(1), order_id="o1"), ordered("o1", 25.0, when=at(0))
    )
    assert profile.orders.cancelled_amount == 25.0
    assert profile.orders.net_revenue == 0.0


def test_refund_reduces_net_revenue() -> None:
    profile = _fold(
        ordered("o1", 100.0), event("order.refunded", when=at(3), order_id="o1", amount=30.0)
    )
    assert (profile.orders.refund_count, profile.orders.net_revenue) == (1, 70.0)


def test_order_closes_its_cart_and_a_late_add_does_not_reopen_it() -> None:
    profile = _fold(
        added("k1", "p1", when=at(0)),
        ordered("o1", cart="k1", when=at(0, 1)),
        added("k1", "p2", when=at(0, 0, 30)),
    )
    assert profile.open_cart is None
    assert "k1" in profile.closed_carts


def test_open_cart_value_follows_adds_and_removes() -> None:
    profile = _fold(
        added("k1", "p1", quantity=2, price=10.0),
        added("k1", "p2", price=5.0),
        removed("k1", "p1", quantity=1),
    )
    cart = profile.open_cart
    assert cart is not None
    assert (cart.value, cart.item_count) == (15.0, 2)


def test_removal_arriving_before_its_add_nets_out() -> None:
    profile = _fold(removed("k1", "p1", when=at(0, 0, 5)), added("k1", "p1", when=at(0)))
    assert profile.open_cart is None


def test_recent_views_keep_the_newest_ten() -> None:
    profile = _fold(*[viewed(f"p{i}", when=at(0, 0, i)) for i in range(30)])
    assert [v.product_id for v in profile.recent_views] == [f"p{i}" for i in range(20, 30)]


def test_category_affinity_counts_only_the_last_thirty_days() -> None:
    profile = _fold(
        viewed(category="books", when=at(0)),
        viewed(category="sneakers", when=at(40)),
        viewed(category="sneakers", when=at(41)),
    )
    assert profile.category_affinity == {"sneakers": 1.0}


def test_first_response_time_is_measured_from_opening_to_first_agent_reply() -> None:
    profile = _fold(
        event("support.ticket_opened", when=at(0), ticket_id="t1", priority="high"),
        event("support.ticket_replied", when=at(0, 3), ticket_id="t1", author="agent"),
        event("support.ticket_replied", when=at(0, 1), ticket_id="t1", author="customer"),
    )
    assert profile.support.first_response_seconds_total == 3 * 3600
    assert [t.ticket_id for t in profile.support.open_tickets] == ["t1"]


def test_satisfaction_summary_counts_csat_and_nps() -> None:
    profile = _fold(
        event("support.satisfaction_rated", csat=2, nps=3),
        event("support.satisfaction_rated", csat=4, nps=10),
    )
    assert (profile.support.csat_average, profile.support.nps) == (3.0, 0.0)


def test_latest_consent_by_event_time_wins_whatever_the_arrival_order() -> None:
    profile = _fold(
        event("consent.updated", when=at(2), channel="email", granted=False),
        event("consent.updated", when=at(1), channel="email", granted=True),
    )
    assert profile.has_consent("email") is False


def test_the_reducers_never_keep_contact_details() -> None:
    """Digests (with a key) and plain contacts (when asked for) are the engine's to add."""
    profile = _fold(event("customer.registered", email="Ann@Example.com", phone="+44 20 7946 0000"))
    assert "Ann@Example.com" not in str(profile.traits)
    assert "email_digest" not in profile.traits


def test_merging_an_anonymous_profile_brings_its_cart_and_views() -> None:
    customer = _fold(viewed("p9", when=at(0)))
    visitor = Profile(key="anon:a1")
    apply_event(visitor, added("k7", "p1", customer=None, anonymous="a1", when=at(1)))
    apply_event(visitor, viewed("p1", customer=None, anonymous="a1", when=at(1)))
    merge_profiles(customer, visitor)
    assert customer.open_cart is not None
    assert customer.open_cart.cart_id == "k7"
    assert [v.product_id for v in customer.recent_views] == ["p9", "p1"]
    assert customer.anonymous_ids == ["a1"]
