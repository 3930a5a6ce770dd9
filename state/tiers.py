"""Membership tier from net spend over the trailing calendar months.

Spend is kept per month, so a tier goes up on the order that crosses a threshold and
down when the month that carried it leaves the qualifying window (or on a refund).

>>> from state.policy import TierPolicy
>>> month = month_index(0.0)        # January 1970
>>> tier_at({month: 250_000}, as_of=86400.0, policy=TierPolicy())
('gold', 31536000.0)
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from state.policy import TierPolicy


def month_index(ts: float) -> int:
    """Calendar month of an epoch time, as ``year * 12 + month - 1`` (UTC)."""
    return _month_of_day(int(ts // 86_400))


@lru_cache(maxsize=8192)
def _month_of_day(day: int) -> int:
    moment = datetime.fromtimestamp(day * 86_400, UTC)
    return moment.year * 12 + moment.month - 1


def month_start(index: int) -> float:
    """Epoch time at which month ``index`` begins (UTC)."""
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp()


def qualifying_spend_cents(spend_by_month: dict[int, int], current_month: int, months: int) -> int:
    first = current_month - months + 1
    return sum(
        amount for month, amount in spend_by_month.items() if first <= month <= current_month
    )


def tier_at(
    spend_by_month: dict[int, int], as_of: float, policy: TierPolicy
) -> tuple[str, float | None]:
    """The tier at ``as_of`` and the start of the month when the window next drops spend."""
    current = month_index(as_of)
    spend = qualifying_spend_cents(spend_by_month, current, policy.qualifying_months)
    tier = policy.tier_for(spend / 100)
    first = current - policy.qualifying_months + 1
    inside = [month for month, amount in spend_by_month.items() if month >= first and amount]
    if not inside:
        return tier, None
    return tier, month_start(min(inside) + policy.qualifying_months)


def next_tier_gap(
    spend_by_month: dict[int, int], as_of: float, policy: TierPolicy
) -> tuple[str | None, int | None]:
    """The next tier up at ``as_of`` and the net spend in cents it still takes.

    >>> from state.policy import TierPolicy
    >>> next_tier_gap({month_index(0.0): 180_000}, 86400.0, TierPolicy())
    ('gold', 20000)
    """
    spend = qualifying_spend_cents(spend_by_month, month_index(as_of), policy.qualifying_months)
    above = policy.next_above(spend / 100)
    if above is None:
        return None, None
    return above.name, max(1, round(above.min_spend * 100) - spend)


def prune_months(spend_by_month: dict[int, int], current_month: int, keep: int) -> None:
    """Forget months that can no longer count (bounded state)."""
    for month in [m for m in spend_by_month if m <= current_month - keep]:
        del spend_by_month[month]
