"""Churn features: numbers read off a profile at one moment, and nothing after it.

``features(profile, at)`` only reads the profile as it stands (the engine calls it right
after applying the event at ``at``, or at a check-in), so a snapshot cannot see the
future: the test in ``tests/churn/test_features.py`` changes everything after ``at`` and
gets the same values.

Counts and money are log-scaled (``log1p``): customers differ by orders of magnitude, and
the model is linear after a standard scaler. Order windows count the profile's recent
orders (the newest ``MAX_RECENT_ORDERS``).

>>> from state.profile import Profile
>>> values = features(Profile(key="c1", customer_id="c1"), 0.0)
>>> len(values) == len(FEATURES), values[FEATURES.index("orders")]
(True, 0.0)
"""

from __future__ import annotations

import math
from typing import Final

from state.profile import DAY, Profile

#: Days without an order the Poisson estimate looks ahead, unless given: the horizon.
DEFAULT_HORIZON_DAYS: Final = 90.0

FEATURES: Final = (
    # orders and money
    "orders",  # log1p(lifetime orders)
    "revenue",  # log1p(lifetime net revenue)
    "order_value",  # log1p(average order value)
    "last_order_value",  # log1p(the newest order's total)
    "tenure_days",  # log1p(days since the first order)
    "recency_days",  # log1p(days since the newest order): 0 at an order, grows at check-ins
    "previous_gap_days",  # log1p(days between the last two orders); 0 with one order
    "has_previous",  # 1 with two orders or more
    "mean_gap_days",  # log1p(tenure / (orders - 1))
    "gap_trend",  # the last gap over the mean gap: above 1 means slowing down
    "overdue",  # recency over the mean gap
    "orders_30d",
    "orders_90d",
    "orders_180d",
    "orders_365d",
    "revenue_90d",  # log1p(net revenue of orders in the last 90 days)
    "no_order_horizon",  # exp(-horizon * order rate): chance of no order in the horizon
    "order_rate",  # log1p(orders per year over the tenure)
    # returns and cancellations
    "refunds",  # log1p(refund count)
    "refunded_share",  # refunded over revenue
    "cancelled",  # log1p(cancelled orders)
    # browse, cart, support
    "views_30d",  # log1p(product views in the affinity window)
    "open_carts",
    "evicted_carts",  # log1p(carts dropped by the open-cart bound)
    "tickets",  # log1p(tickets opened)
    "open_tickets",
    "complaints",  # log1p(complaints)
    "csat",  # average CSAT (1-5), 0 if none
    "nps_detractor",  # 1 if the newest NPS answers were more detractors than promoters
    # what the customer wrote (appended last: see ``named``)
    "sentiment_average",  # mean sentiment -1..1 of their texts, 0 if none
    "sentiment_recent",  # the newest text's sentiment, 0 if none
)
_INDEX: Final = {name: i for i, name in enumerate(FEATURES)}


def _log(value: float) -> float:
    return math.log1p(value) if value > 0 else 0.0


def features(
    profile: Profile, at: float, horizon_days: float = DEFAULT_HORIZON_DAYS
) -> list[float]:
    """The churn features of ``profile`` as of ``at``, in ``FEATURES`` order.

    ``horizon_days`` is the churn horizon: the chance of no order is taken over it, the
    very question a label answers."""
    orders = profile.orders
    count = orders.count
    first, last, previous = orders.first_order_at, orders.last_order_at, orders.previous_order_at
    tenure = (at - first) / DAY if first is not None else 0.0
    recency = (at - last) / DAY if last is not None else 0.0
    gap = (last - previous) / DAY if last is not None and previous is not None else 0.0
    mean_gap = tenure / (count - 1) if count > 1 and tenure > 0 else 0.0
    net = (orders.revenue_cents - orders.cancelled_cents - orders.refunded_cents) / 100
    windows = [0, 0, 0, 0]
    recent_revenue = 0.0
    newest_value = 0.0
    newest_at = float("-inf")
    for record in orders.recent.values():
        placed = record.placed_at
        if placed is None or placed > at or record.cancelled:
            continue
        age = (at - placed) / DAY
        if age <= 365:
            windows[3] += 1
            if age <= 180:
                windows[2] += 1
                if age <= 90:
                    windows[1] += 1
                    recent_revenue += record.total_cents / 100
                    if age <= 30:
                        windows[0] += 1
        if placed > newest_at:
            newest_at, newest_value = placed, record.total_cents / 100
    rate = 365.0 * (count - 1) / tenure if count > 1 and tenure >= 1 else 0.0
    support = profile.support
    open_tickets = sum(1 for t in support.tickets.values() if t.resolved_at is None)
    csat = support.csat_average or 0.0
    values = [
        _log(count),
        _log(net),
        _log(net / count) if count else 0.0,
        _log(newest_value),
        _log(tenure),
        _log(recency),
        _log(gap),
        1.0 if count > 1 else 0.0,
        _log(mean_gap),
        gap / mean_gap if count > 2 and mean_gap > 0 else 1.0,
        recency / mean_gap if mean_gap > 0 else 0.0,
        float(windows[0]),
        float(windows[1]),
        float(windows[2]),
        float(windows[3]),
        _log(recent_revenue),
        math.exp(-horizon_days * rate / 365.0) if rate else 1.0,
        _log(rate),
        _log(orders.refund_count),
        orders.refunded_cents / orders.revenue_cents if orders.revenue_cents > 0 else 0.0,
        _log(orders.cancelled_count),
        _log(sum(sum(days.values()) for days in profile.category_views.values())),
        float(len(profile.carts)),
        _log(profile.carts_evicted),
        _log(support.opened_count),
        float(open_tickets),
        _log(support.complaint_count),
        float(csat),
        1.0 if support.nps_detractors > support.nps_promoters else 0.0,
        support.sentiment_average or 0.0,
        support.sentiment_recent or 0.0,
    ]
    # Four decimals are plenty for a model, and keep stored snapshots small.
    return [round(v, 4) for v in values]


def named(values: list[float]) -> dict[str, float]:
    """Feature values by name (what river models take).

    Features are only ever appended, so a snapshot stored before a feature existed (its
    label falls due after an upgrade) reads 0.0 for the newer ones.

    >>> named([1.0] * (len(FEATURES) - 2))["sentiment_recent"]
    0.0
    """
    if len(values) < len(FEATURES):
        values = [*values, *([0.0] * (len(FEATURES) - len(values)))]
    return dict(zip(FEATURES, values, strict=True))


def value(values: list[float], name: str) -> float:
    return values[_INDEX[name]]
