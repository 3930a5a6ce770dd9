"""Audit records: proof that a profile was erased, without saying whose it was.

An erasure (a ``customer.erasure_requested`` event, or a profile anonymised after the
retention period) puts out one ``ErasureAudit``. It names the request by a digest of its
event id (``request_digest``: the requester, who knows the id, finds its record; an id
that embeds a customer id gives nothing away) and counts what was removed. It holds no
customer id, anonymous id, trait or anything derived from them alone, so it may be kept
for as long as the law asks for proof.

>>> audit = ErasureAudit.make("request", "evt-77", at=1.0, profiles=1, journey_runs=1)
>>> audit.cause == request_digest("evt-77") != "evt-77", audit.profiles
(True, 1)
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

ErasureReason = Literal["request", "retention"]


class ErasureAudit(msgspec.Struct, frozen=True, kw_only=True, tag="erasure", tag_field="record"):
    audit_id: str
    #: ``request``: a customer asked; ``retention``: no event for ``privacy.retention_days``.
    reason: ErasureReason
    #: ``request_digest`` of the request's event id, or ``retention@<epoch>``.
    cause: str
    #: Event time of the erasure.
    at: float
    #: Profiles removed: 1, or 0 when there was none under that id.
    profiles: int = 0
    #: Visitor (anonymous) ids linked to it, forgotten with it.
    visitors: int = 0
    #: Journey runs in progress that ended with it.
    journey_runs: int = 0
    #: Churn snapshots waiting for their label, dropped unlabelled.
    churn_snapshots: int = 0
    #: Timers (reviews, journey moments, churn check-ins) cancelled.
    timers: int = 0
    #: Events held for the profile (waiting for a visitor's profile) dropped with it.
    held_events: int = 0
    #: Lots of loyalty points in its ledger, and the points they still held.
    points_lots: int = 0
    points: int = 0

    @classmethod
    def make(
        cls,
        reason: ErasureReason,
        cause: str,
        at: float,
        profiles: int = 0,
        visitors: int = 0,
        journey_runs: int = 0,
        churn_snapshots: int = 0,
        timers: int = 0,
        held_events: int = 0,
        points_lots: int = 0,
        points: int = 0,
    ) -> ErasureAudit:
        """``cause``: the request's event id (kept as its digest), or ``retention@<epoch>``."""
        kept = request_digest(cause) if reason == "request" else cause
        digest = hashlib.blake2b(f"erasure\x1f{kept}".encode(), digest_size=10).hexdigest()
        return cls(
            audit_id=digest,
            reason=reason,
            cause=kept,
            at=at,
            profiles=profiles,
            visitors=visitors,
            journey_runs=journey_runs,
            churn_snapshots=churn_snapshots,
            timers=timers,
            held_events=held_events,
            points_lots=points_lots,
            points=points,
        )


def request_digest(event_id: str) -> str:
    """How an audit record names an erasure request: hex BLAKE2b-160 of its event id.

    >>> request_digest("evt-77")[:12]
    '3bb1ddc71ce5'
    """
    return hashlib.blake2b(event_id.encode(), digest_size=20).hexdigest()
