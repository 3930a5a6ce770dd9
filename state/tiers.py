"""Membership tier from net spend, or from growth value (成长值), over the trailing
calendar months.

Spend is kept per month, so a tier goes up on the order that crosses a threshold and
down when the month that carried it leaves the qualifying window (or on a refund). Growth
value is worked out from the same monthly spend (``per_currency_unit``) and the reviews
and check-ins counted per month (``Growth``), with the weights of ``TierPolicy.growth``.
A downgrade can wait out a grace period (``state/derived.py``).

>>> from state.policy import TierPolicy
>>> month = month_index(0.0)        # January 1970
>>> tier_at({month: 250_000}, as_of=86400.0, policy=TierPolicy())
('gold', 31536000.0)
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final

import msgspec

from state.policy import TierPolicy

#: Months of review and check-in counts kept (the longest qualifying window).
MAX_GROWTH_MONTHS: Final = 12


class Growth(msgspec.Struct, omit_defaults=True, gc=False):
    """What growth value counts beyond spend: reviews and check-ins per calendar month,
    and the last day checked in (one check-in a day counts)."""

    reviews_by_month: dict[int, int] = {}
    check_ins_by_month: dict[int, int] = {}
    last_check_in: str | None = None


def count_in_month(by_month: dict[int, int], ts: float) -> None:
    """One more in the month of ``ts``; months older than the longest window are dropped."""
    month = month_index(ts)
    by_month[month] = by_month.get(month, 0) + 1
    for old in [m for m in by_month if m <= month - MAX_GROWTH_MONTHS]:
        del by_month[old]


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


def in_window(by_month: dict[int, int], current_month: int, months: int) -> int:
    """The sum of a per-month count over the ``months`` up to ``current_month``."""
    first = current_month - months + 1
    return sum(amount for month, amount in by_month.items() if first <= month <= current_month)


def qualifying_value(
    spend_by_month: dict[int, int], as_of: float, policy: TierPolicy, growth: Growth | None
) -> float:
    """What the tier thresholds compare with at ``as_of``: net spend (in currency units),
    or growth value.

    >>> from state.policy import TierPolicy
    >>> policy = TierPolicy.model_validate({"basis": "growth", "levels": [
    ...     {"name": "member", "min_growth": 0}, {"name": "gold", "min_growth": 100}]})
    >>> m = month_index(0.0)
    >>> qualifying_value({m: 5_050}, 86400.0, policy, Growth({m: 2}, {m: 3}))
    73.0
    """
    current = month_index(as_of)
    months = policy.qualifying_months
    spend = in_window(spend_by_month, current, months)
    if policy.basis == "spend":
        return spend / 100
    rules = policy.growth
    value = math.floor(spend * rules.per_currency_unit / 100)
    if growth is not None:
        reviews = in_window(growth.reviews_by_month, current, months)
        check_ins = in_window(growth.check_ins_by_month, current, months)
        value += reviews * rules.review + check_ins * rules.check_in
    return float(value)


def tier_at(
    spend_by_month: dict[int, int],
    as_of: float,
    policy: TierPolicy,
    growth: Growth | None = None,
) -> tuple[str, float | None]:
    """The tier at ``as_of`` and the start of the month when the window next drops
    something it counts."""
    tier = policy.tier_for(qualifying_value(spend_by_month, as_of, policy, growth))
    first = month_index(as_of) - policy.qualifying_months + 1
    counted = [spend_by_month]
    if policy.basis == "growth" and growth is not None:
        counted += [growth.reviews_by_month, growth.check_ins_by_month]
    inside = [m for by_month in counted for m, n in by_month.items() if m >= first and n]
    if not inside:
        return tier, None
    return tier, month_start(min(inside) + policy.qualifying_months)


def next_tier_gap(
    spend_by_month: dict[int, int],
    as_of: float,
    policy: TierPolicy,
    growth: Growth | None = None,
) -> tuple[str | None, int | None]:
    """The next tier up at ``as_of`` and what it still takes: net spend in cents, or
    growth value.

    >>> from state.policy import TierPolicy
    >>> next_tier_gap({month_index(0.0): 180_000}, 86400.0, TierPolicy())
    ('gold', 20000)
    """
    value = qualifying_value(spend_by_month, as_of, policy, growth)
    above = policy.next_above(value)
    if above is None:
        return None, None
    if policy.basis == "growth":
        return above.name, max(1, math.ceil(above.threshold("growth") - value))
    return above.name, max(1, round(above.min_spend * 100) - round(value * 100))


def prune_months(spend_by_month: dict[int, int], current_month: int, keep: int) -> None:
    """Forget months that can no longer count (bounded state)."""
    for month in [m for m in spend_by_month if m <= current_month - keep]:
        del spend_by_month[month]
