"""Recomputing the derived fields (RFM, lifecycle, tier) as of the profile's clock.

>>> from state.policy import ProfilePolicy, TierPolicy
>>> from state.profile import Profile
>>> p = Profile(key="c1")
>>> p.orders.count, p.orders.last_order_at, p.as_of = 1, 0.0, 1.0
>>> [(c.kind, c.before, c.after) for c in refresh_derived(p, ProfilePolicy(), cause="e1")]
[('lifecycle_changed', 'prospect', 'new')]
"""

from __future__ import annotations

from state.changes import ProfileChange
from state.lifecycle import stage_at
from state.policy import ProfilePolicy, TierPolicy
from state.profile import Profile
from state.rfm import score_rfm
from state.tiers import next_tier_gap, tier_at


def refresh_derived(profile: Profile, policy: ProfilePolicy, cause: str) -> list[ProfileChange]:
    """Update RFM, lifecycle, tier and the next review time; return what visibly changed."""
    as_of = profile.as_of
    changes: list[ProfileChange] = []
    profile.rfm = score_rfm(profile.orders, as_of, policy.rfm)
    stage, stage_next = stage_at(profile.orders, as_of, policy.lifecycle)
    if stage != profile.lifecycle:
        changes.append(
            ProfileChange.make(
                "lifecycle_changed", profile.key, profile.lifecycle, stage, as_of, cause
            )
        )
        profile.lifecycle = stage
    tiers, spend, growth = policy.tiers, profile.orders.spend_by_month, profile.growth
    tier, tier_next = tier_at(spend, as_of, tiers, growth)
    grace = _graced(profile, tier, as_of, tiers)
    if grace is not None:
        tier_next = grace if tier_next is None else min(tier_next, grace)
    elif tier != profile.tier:
        changes.append(
            ProfileChange.make("tier_changed", profile.key, profile.tier, tier, as_of, cause)
        )
        profile.tier = tier
    above, gap = next_tier_gap(spend, as_of, tiers, growth)
    profile.next_tier = above
    profile.to_next_tier_cents = gap if tiers.basis == "spend" else None
    profile.to_next_tier_growth = gap if tiers.basis == "growth" else None
    times = [t for t in (stage_next, tier_next) if t is not None]
    profile.next_review_at = min(times) if times else None
    return changes


def _graced(profile: Profile, tier: str, as_of: float, policy: TierPolicy) -> float | None:
    """When a customer below their tier keeps it until (None: the tier is ``tier`` now).

    Up goes at once. Down waits ``downgrade_grace_days`` from the moment the customer
    first fell below, and is then to the tier they reach at that time; climbing back
    during the grace ends it."""
    days = policy.downgrade_grace_days
    if days == 0 or policy.rank(tier) >= policy.rank(profile.tier):
        profile.tier_grace_until = None
        return None
    until = profile.tier_grace_until
    if until is None:
        until = profile.tier_grace_until = as_of + days * 86_400
    if as_of >= until:
        profile.tier_grace_until = None
        return None
    return until
