"""Recomputing the derived fields (RFM, lifecycle, tier) as of the profile's clock.

>>> from state.policy import ProfilePolicy
>>> from state.profile import Profile
>>> p = Profile(key="c1")
>>> p.orders.count, p.orders.last_order_at, p.as_of = 1, 0.0, 1.0
>>> [(c.kind, c.before, c.after) for c in refresh_derived(p, ProfilePolicy(), cause="e1")]
[('lifecycle_changed', 'prospect', 'new')]
"""

from __future__ import annotations

from state.changes import ProfileChange
from state.lifecycle import stage_at
from state.policy import ProfilePolicy
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
    tier, tier_next = tier_at(profile.orders.spend_by_month, as_of, policy.tiers)
    if tier != profile.tier:
        changes.append(
            ProfileChange.make("tier_changed", profile.key, profile.tier, tier, as_of, cause)
        )
        profile.tier = tier
    profile.next_tier, profile.to_next_tier_cents = next_tier_gap(
        profile.orders.spend_by_month, as_of, policy.tiers
    )
    times = [t for t in (stage_next, tier_next) if t is not None]
    profile.next_review_at = min(times) if times else None
    return changes
