"""Profile changes: what the engine reports when a derived field moves.

Until journeys consume them, these are the engine's output. Each carries a
deterministic id so replays and redeliveries can be compared and deduplicated.

>>> change = ProfileChange.make("tier_changed", "c1", "member", "silver", at=0.0, cause="e1")
>>> change.change_id == ProfileChange.make("tier_changed", "c1", "member", "silver", 0.0, "e1").change_id
True
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

ChangeKind = Literal[
    "lifecycle_changed",
    "tier_changed",
    "tag_added",
    "tag_removed",
    "profile_erased",
    "churn_risk_changed",
    "points_redemption_refused",
    "points_awarded",
]


class ProfileChange(msgspec.Struct, frozen=True, kw_only=True):
    change_id: str
    kind: ChangeKind
    profile_key: str
    before: str | None
    after: str | None
    #: Event time (epoch seconds) at which the change took effect.
    at: float
    #: The event id that caused it, or ``review@<epoch>`` for a time-driven review.
    cause: str

    @classmethod
    def make(
        cls,
        kind: ChangeKind,
        profile_key: str,
        before: str | None,
        after: str | None,
        at: float,
        cause: str,
    ) -> ProfileChange:
        digest = hashlib.blake2b(
            f"{kind}\x1f{profile_key}\x1f{before}\x1f{after}\x1f{cause}".encode(), digest_size=10
        ).hexdigest()
        return cls(
            change_id=digest,
            kind=kind,
            profile_key=profile_key,
            before=before,
            after=after,
            at=at,
            cause=cause,
        )
