"""The profile as conditions see it: a flat, documented set of names.

Marketers write ``net_revenue >= 500 and lifecycle == "at_risk"``; these are the names
they may use. ``SAMPLE_VIEW`` gives every name a typical non-empty value, so a rule can
be type-checked at load time by evaluating it once.

>>> from state.profile import Profile
>>> view = profile_view(Profile(key="c1"))
>>> view["orders_count"], view["lifecycle"], view["days_since_last_order"]
(0, 'prospect', None)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from state.loyalty import expiring_within, points_at
from state.profile import DAY, Cart, Profile

#: name -> (meaning, a sample value used to type-check conditions at load time)
PROFILE_FIELDS: Final[dict[str, tuple[str, Any]]] = {
    "orders_count": ("orders placed, lifetime", 4),
    "revenue": ("gross order value, lifetime", 812.5),
    "net_revenue": ("revenue less cancellations and refunds", 790.0),
    "average_order_value": ("revenue / orders_count", 203.1),
    "refund_count": ("refunds received", 1),
    "refunded_amount": ("money refunded", 22.5),
    "cancelled_count": ("orders cancelled", 0),
    "days_since_last_order": ("days since the last order, None if never ordered", 12.5),
    "days_since_first_order": ("days since the first order, None if never ordered", 340.0),
    "lifecycle": ("prospect, new, active, won_back, at_risk, dormant or churned", "active"),
    "tier": ("membership tier name", "silver"),
    "rfm_recency": ("RFM recency score 1-5 (0 without orders)", 4),
    "rfm_frequency": ("RFM frequency score 1-5", 3),
    "rfm_monetary": ("RFM monetary score 1-5", 3),
    "rfm_segment": ("RFM segment, e.g. champions, at_risk, lost", "loyal"),
    "cart_value": ("value of the open cart, 0 without one", 64.0),
    "cart_items": ("items in the open cart", 2),
    "views_30d": ("product views in the last 30 days", 14),
    "top_category": ("most viewed category in 30 days, None without views", "sneakers"),
    "open_tickets": ("support tickets not yet resolved", 1),
    "complaint_count": ("tickets opened as complaints", 0),
    "csat_average": ("average CSAT 1-5, None without ratings", 4.2),
    "nps": ("net promoter score -100..100, None without ratings", 40.0),
    "review_average": ("average review rating 1-5, None without reviews", 4.5),
    "sentiment_recent": (
        "sentiment -1..1 of the newest text the customer wrote (ticket, reply, rating "
        "comment, review), None without any",
        -0.4,
    ),
    "sentiment_average": ("average sentiment -1..1 of all they wrote, None without any", 0.2),
    "sentiment_count": ("texts of theirs scored for sentiment", 3),
    "orders_30d": ("orders placed in the last 30 days (of the 20 most recent)", 1),
    "tags": ("the set of tags the customer has", frozenset({"vip"})),
    "email_consent": ("consent to email", True),
    "sms_consent": ("consent to SMS", False),
    "push_consent": ("consent to push", True),
    "is_known": ("identified (has a customer id)", True),
    "email_reachable": (
        "no hard bounce or spam complaint on email since the address changed",
        True,
    ),
    "sms_reachable": ("no hard bounce or spam complaint on SMS since the number changed", True),
    "messages_delivered": ("messages delivered, every channel", 12),
    "messages_opened": ("messages opened, every channel", 5),
    "messages_clicked": ("messages clicked, every channel", 2),
    "days_since_last_engaged": (
        "days since a message was last opened or clicked, None if never",
        3.5,
    ),
    "next_tier": ("the next tier up, None at the top tier", "gold"),
    "spend_to_next_tier": ("net spend still needed for the next tier, None at the top", 120.0),
    "growth_to_next_tier": (
        "growth value still needed for the next tier, with tiers on growth (else None)",
        40,
    ),
    "points_balance": ("loyalty points that can be spent now (0 without a program)", 1250),
    "points_pending": ("points of orders still inside their return window", 300),
    "points_expiring_30d": ("spendable points that expire within 30 days", 200),
    "days_to_points_expiry": ("days until spendable points next expire, None if none", 21.5),
}

SAMPLE_VIEW: Final[dict[str, Any]] = {name: sample for name, (_, sample) in PROFILE_FIELDS.items()}


def _days_to_expiry(profile: Profile) -> float | None:
    if profile.points is None:
        return None
    soonest = points_at(profile.points, profile.as_of).next_expiry_at
    return None if soonest is None else round((soonest - profile.as_of) / DAY, 3)


def _days(as_of: float, at: float | None) -> float | None:
    return None if at is None else round((as_of - at) / DAY, 3)


def _views(p: Profile) -> dict[str, int]:
    return {cat: sum(days.values()) for cat, days in p.category_views.items()}


def _top_category(p: Profile) -> str | None:
    views = _views(p)
    return min(views, key=lambda c: (-views[c], c)) if views else None


def _cart_value(p: Profile) -> float:
    cart = p.open_cart
    return cart.value if cart else 0.0


def _cart_items(p: Profile) -> int:
    cart = p.open_cart
    return cart.item_count if cart else 0


#: The cart names, read off one cart (None: closed or unknown): what a run scoped by a
#: cart sees instead of the customer's most recently touched cart.
CART_GETTERS: Final[dict[str, Callable[[Cart | None], Any]]] = {
    "cart_value": lambda cart: cart.value if cart is not None else 0.0,
    "cart_items": lambda cart: cart.item_count if cart is not None else 0,
}

PROFILE_GETTERS: Final[dict[str, Callable[[Profile], Any]]] = {
    "orders_count": lambda p: p.orders.count,
    "revenue": lambda p: p.orders.revenue,
    "net_revenue": lambda p: p.orders.net_revenue,
    "average_order_value": lambda p: p.orders.average_order_value,
    "refund_count": lambda p: p.orders.refund_count,
    "refunded_amount": lambda p: p.orders.refunded_amount,
    "cancelled_count": lambda p: p.orders.cancelled_count,
    "days_since_last_order": lambda p: _days(p.as_of, p.orders.last_order_at),
    "days_since_first_order": lambda p: _days(p.as_of, p.orders.first_order_at),
    "lifecycle": lambda p: p.lifecycle,
    "tier": lambda p: p.tier,
    "rfm_recency": lambda p: p.rfm.recency,
    "rfm_frequency": lambda p: p.rfm.frequency,
    "rfm_monetary": lambda p: p.rfm.monetary,
    "rfm_segment": lambda p: p.rfm.segment,
    "cart_value": _cart_value,
    "cart_items": _cart_items,
    "views_30d": lambda p: sum(_views(p).values()),
    "top_category": _top_category,
    "open_tickets": lambda p: len(p.support.open_tickets),
    "complaint_count": lambda p: p.support.complaint_count,
    "csat_average": lambda p: p.support.csat_average,
    "nps": lambda p: p.support.nps,
    "review_average": lambda p: p.support.review_average,
    "sentiment_recent": lambda p: p.support.sentiment_recent,
    "sentiment_average": lambda p: p.support.sentiment_average,
    "sentiment_count": lambda p: p.support.sentiment_count,
    "orders_30d": lambda p: sum(
        1
        for order in p.orders.recent.values()
        if order.placed_at is not None and p.as_of - order.placed_at <= 30 * DAY
    ),
    "tags": lambda p: frozenset(p.tags),
    "email_consent": lambda p: p.has_consent("email"),
    "sms_consent": lambda p: p.has_consent("sms"),
    "push_consent": lambda p: p.has_consent("push"),
    "is_known": lambda p: p.customer_id is not None,
    "email_reachable": lambda p: p.reachable("email"),
    "sms_reachable": lambda p: p.reachable("sms"),
    "messages_delivered": lambda p: sum(r.delivered for r in p.reach.values()),
    "messages_opened": lambda p: sum(r.opened for r in p.reach.values()),
    "messages_clicked": lambda p: sum(r.clicked for r in p.reach.values()),
    "days_since_last_engaged": lambda p: _days(
        p.as_of,
        max((r.last_engaged_at for r in p.reach.values() if r.last_engaged_at), default=None),
    ),
    "next_tier": lambda p: p.next_tier,
    "spend_to_next_tier": lambda p: (
        None if p.to_next_tier_cents is None else p.to_next_tier_cents / 100
    ),
    "growth_to_next_tier": lambda p: p.to_next_tier_growth,
    "points_balance": lambda p: 0 if p.points is None else points_at(p.points, p.as_of).balance,
    "points_pending": lambda p: 0 if p.points is None else points_at(p.points, p.as_of).pending,
    "points_expiring_30d": lambda p: (
        0 if p.points is None else expiring_within(p.points, p.as_of, 30 * DAY)
    ),
    "days_to_points_expiry": lambda p: _days_to_expiry(p),
}
assert set(PROFILE_GETTERS) == set(PROFILE_FIELDS), "every documented field needs a getter"


class ProfileView(Mapping[str, Any]):
    """A read-only mapping over a profile; each name is computed only when a condition reads it."""

    __slots__ = ("_profile",)

    def __init__(self, profile: Profile) -> None:
        self._profile = profile

    def __getitem__(self, name: str) -> Any:
        return PROFILE_GETTERS[name](self._profile)

    def __iter__(self) -> Iterator[str]:
        return iter(PROFILE_GETTERS)

    def __len__(self) -> int:
        return len(PROFILE_GETTERS)


def profile_view(profile: Profile) -> ProfileView:
    """The names in ``PROFILE_FIELDS`` with this profile's values, computed on demand."""
    return ProfileView(profile)
