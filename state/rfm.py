"""RFM: recency, frequency and monetary scores (1..5) and the segment they put a customer in.

>>> from state.policy import RfmPolicy
>>> from state.profile import Orders
>>> orders = Orders(count=7, revenue_cents=300_000, last_order_at=0.0)
>>> score_rfm(orders, as_of=5 * 86400.0, policy=RfmPolicy())
Rfm(recency=5, frequency=5, monetary=5, segment='champions')
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from state.policy import RfmPolicy
from state.profile import DAY, Orders, Rfm


def _score_up(value: float, breakpoints: Sequence[float]) -> int:
    """1 for values up to the first breakpoint ... 5 above the last one."""
    return bisect_left(breakpoints, value) + 1


def segment_for(recency: int, frequency: int) -> str:
    """The classic RFM segment grid on the recency and frequency scores."""
    if recency >= 4:
        if frequency >= 4:
            return "champions"
        return "potential_loyalist" if frequency >= 2 else "new_customer"
    if recency == 3:
        if frequency >= 4:
            return "loyal"
        return "need_attention" if frequency >= 2 else "promising"
    if frequency >= 4:
        return "cant_lose" if recency == 1 else "at_risk"
    if frequency >= 2:
        return "hibernating"
    return "lost"


def score_rfm(orders: Orders, as_of: float, policy: RfmPolicy) -> Rfm:
    """Scores for a customer with orders; ``Rfm()`` (all zero, segment ``none``) without."""
    if orders.last_order_at is None or orders.count == 0:
        return Rfm()
    days = max(0.0, (as_of - orders.last_order_at) / DAY)
    recency = 6 - _score_up(days, policy.recency_days)
    frequency = _score_up(orders.count, policy.frequency_orders)
    monetary = _score_up(orders.net_revenue, policy.monetary_spend)
    return Rfm(recency, frequency, monetary, segment_for(recency, frequency))
