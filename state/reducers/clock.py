"""The profile's clock, its day and month windows, and the small helpers every reducer uses
(money in cents, last-writer-wins stamps)."""

from __future__ import annotations

from state.profile import (
    AFFINITY_WINDOW_DAYS,
    DAY,
    Profile,
    Stamped,
)
from state.tiers import month_index


def cents(amount: float) -> int:
    """Money to integer cents, rounding half away from zero like a till."""
    return int(amount * 100 + (0.5 if amount >= 0 else -0.5))


def newer(stamp: Stamped | None, at: float, event_id: str) -> bool:
    """True when (at, event_id) should replace ``stamp`` under last-writer-wins."""
    return stamp is None or (at, event_id) > (stamp.at, stamp.event_id)


# --- clock and windows ------------------------------------------------------------------------


def advance_profile_clock(profile: Profile, ts: float) -> None:
    """Move the profile's clock forward; windows are pruned when the day changes."""
    before = profile.as_of
    if ts <= before:
        return
    profile.as_of = ts
    if ts // DAY != before // DAY:
        prune_windows(profile, int(ts // DAY))


def prune_windows(profile: Profile, today: int) -> None:
    """Drop day buckets that no window can count any more (keeps the profile bounded)."""
    category_views = profile.category_views
    if category_views:
        oldest = today - AFFINITY_WINDOW_DAYS + 1
        for category, days in list(category_views.items()):
            if next(iter(days)) < oldest and not drop_days_before(days, oldest):
                del category_views[category]
    spend = profile.orders.spend_by_month
    if spend:
        drop_days_before(spend, month_index(profile.as_of) - 12 + 1)


# --- day buckets: dicts of {day or month number: count} kept in ascending key order ----------


def count_on(buckets: dict[int, int], key: int, amount: int = 1) -> None:
    """Add ``amount`` to one bucket, keeping the keys ascending (pruning pops from the front)."""
    current = buckets.get(key)
    if current is not None:
        buckets[key] = current + amount
    elif not buckets or key > next(reversed(buckets)):
        buckets[key] = amount  # the usual case: time moves forward
    else:
        buckets[key] = amount
        ordered = sorted(buckets.items())
        buckets.clear()
        buckets.update(ordered)


def add_buckets(into: dict[int, int], other: dict[int, int]) -> None:
    for key, amount in other.items():
        count_on(into, key, amount)


def drop_days_before(buckets: dict[int, int], oldest: int) -> int:
    """Delete the buckets with keys below ``oldest``; return how many are left."""
    while buckets:
        first = next(iter(buckets))
        if first >= oldest:
            break
        del buckets[first]
    return len(buckets)
