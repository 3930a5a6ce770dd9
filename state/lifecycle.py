"""Lifecycle stage from order history and the profile's clock.

``prospect`` (never ordered) → ``new`` (first order) → ``active`` → ``at_risk`` →
``dormant`` → ``churned``; an order after a gap of ``dormant_after_days`` or more
makes the customer ``won_back`` until they would be ``at_risk`` again.

>>> from state.policy import LifecyclePolicy
>>> from state.profile import Orders
>>> stage_at(Orders(count=3, last_order_at=0.0), 70 * 86400.0, LifecyclePolicy())
('at_risk', 10368000.0)
"""

from __future__ import annotations

from state.policy import LifecyclePolicy
from state.profile import DAY, Orders

STAGES = ("prospect", "new", "active", "won_back", "at_risk", "dormant", "churned")


def stage_at(orders: Orders, as_of: float, policy: LifecyclePolicy) -> tuple[str, float | None]:
    """The stage at ``as_of`` and when it would next change without new orders (or None)."""
    last = orders.last_order_at
    if last is None or orders.count == 0:
        return "prospect", None
    age = as_of - last
    at_risk = last + policy.at_risk_after_days * DAY
    dormant = last + policy.dormant_after_days * DAY
    churned = last + policy.churned_after_days * DAY
    if as_of >= churned:
        return "churned", None
    if as_of >= dormant:
        return "dormant", churned
    if as_of >= at_risk:
        return "at_risk", dormant
    previous = orders.previous_order_at
    if previous is not None and last - previous >= policy.dormant_after_days * DAY:
        return "won_back", at_risk
    if orders.count == 1 and age < policy.new_for_days * DAY:
        return "new", last + policy.new_for_days * DAY
    return "active", at_risk
