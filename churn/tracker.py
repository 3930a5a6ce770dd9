"""Snapshots, delayed labels and churn risk on profiles, driven by the engine in event time.

The engine calls ``apply`` after it applies an event (only an order of a known customer
counts), and ``advance`` when the profile's churn timer (``profile.churn.next_due_at``) falls due. Both only read
and change the profile and return outputs, so the engine stays deterministic.

- **Snapshots.** At every order (or one per ``snapshot_gap``) and at check-ins every
  ``checkin`` of silence after the last order (until ``checkin_until``), the profile's
  features are taken and scored with the newest model.
- **Labels.** When a snapshot's horizon has passed, it is labelled ``churned`` if no
  order came after it (the order count has not grown), ``retained`` otherwise, and put out as a ``ChurnLabel`` for the
  learner. Both kinds are put out at the horizon, though a retained one is known at the
  next order: released early, retained labels would reach the learner months before the
  churned ones of the same snapshots, and it would learn a world with little churn
  (docs/churn.md measures it).
- **Risk.** Each snapshot's score becomes the profile's risk, and so does a refresh: every
  ``refresh`` without a score the profile is scored again as of then (no snapshot, no
  label), so the risk of a customer gone quiet keeps moving instead of freezing at the
  last check-in; ``rescore`` does the same at any moment (the end of a replay). The risk
  band moves to ``high`` at ``high`` and back to ``low`` only at ``low``, so a risk near one
  threshold does not flap; each move of the band is a ``churn_risk_changed`` profile change
  that journeys can trigger on.
- **Bounded.** At most ``MAX_PENDING_SNAPSHOTS`` wait on a profile. A customer who orders
  more often than that within a horizon gets no further snapshot until the oldest is
  labelled: every label still comes out at its horizon (docs/churn.md measures both).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from churn.features import features
from churn.model import LinearScorer
from schemas.events import Event, OrderPlaced
from state.changes import ProfileChange
from state.churn_state import MAX_PENDING_SNAPSHOTS, ChurnSnapshot, SnapshotKind
from state.profile import DAY, Profile


class ChurnLabel(msgspec.Struct, frozen=True, kw_only=True, tag_field="record", tag="churn_label"):
    """A snapshot whose outcome is known: what the learner learns from."""

    label_id: str
    #: Whose snapshot it was; the worker publishes labels without it (``anonymous``): the
    #: learner needs none, and a label kept in the labels topic then outlives no erasure.
    profile_key: str | None = None
    #: When the snapshot was taken, and why.
    snapshot_at: float
    kind: SnapshotKind
    #: Feature values in ``churn.features.FEATURES`` order, as of ``snapshot_at``.
    values: list[float]
    churned: bool
    #: The score the snapshot was given when taken, and by which model version.
    score: float | None
    version: int
    #: When the label was put out: the snapshot's horizon.
    at: float

    def anonymous(self) -> ChurnLabel:
        """The label without whose it was: what leaves the engine."""
        return msgspec.structs.replace(self, profile_key=None)


@dataclass(frozen=True)
class ChurnConfig:
    horizon: float = 90 * DAY
    #: Check-ins after this long without an order, again every this long; 0: none.
    checkin: float = 30 * DAY
    #: No check-ins once the last order is this far back.
    checkin_until: float = 180 * DAY
    #: At most one order snapshot per customer within this long; 0: one at every order.
    snapshot_gap: float = 0.0
    #: The risk band's thresholds (hysteresis): to ``high`` at ``high``, back at ``low``.
    high: float = 0.7
    low: float = 0.5
    #: Score a customer again after this long without a score (no snapshot); 0: never.
    refresh: float = 30 * DAY

    def __post_init__(self) -> None:
        if not 0.0 <= self.low < self.high <= 1.0:
            raise ValueError(
                f"churn thresholds need 0 <= low < high <= 1, got {self.low}, {self.high}"
            )
        if self.horizon <= 0:
            raise ValueError(f"churn horizon must be positive, got {self.horizon}")


class ChurnTracker:
    """Churn snapshots, delayed labels and risk on profiles (see the module).

    >>> from churn.model import ChurnLearner
    >>> from schemas.decode import decode_event
    >>> from state.profile import Profile
    >>> from state.reducers import apply_event
    >>> tracker = ChurnTracker(ChurnConfig(), ChurnLearner().scorer)
    >>> order = decode_event(b'{"type":"order.placed","event_id":"e1","customer_id":"c1",'
    ...     b'"occurred_at":"2026-03-02T11:00:00Z","properties":{"order_id":"o1","total":30}}')
    >>> profile = apply_event(Profile(key="c1", customer_id="c1"), order)
    >>> tracker.apply(profile, order, order.occurred_at.timestamp()), len(profile.churn.pending)
    ([], 1)
    >>> [(label.kind, label.churned) for label in tracker.advance(
    ...     profile, order.occurred_at.timestamp() + 91 * 86400)]
    [('order', True)]
    """

    def __init__(self, config: ChurnConfig, scorer: Callable[[], LinearScorer]) -> None:
        """``scorer`` returns the newest model to score with (asked at each snapshot)."""
        self.config = config
        self._scorer = scorer

    def apply(self, profile: Profile, event: Event, ts: float) -> list[ChurnLabel | ProfileChange]:
        """``event`` was applied to ``profile`` at ``ts``: after an order, a snapshot, unless
        one was taken lately."""
        if type(event) is not OrderPlaced or profile.customer_id is None:
            return []
        state = profile.churn
        pending = state.pending
        changes: list[ChurnLabel | ProfileChange] = []
        if (
            not pending
            or ts - pending[-1].at >= self.config.snapshot_gap
            or (pending[-1].kind != "order")
        ):
            changes = self._snapshot(profile, ts, "order", event.event_id)
        self._reschedule(profile)
        return changes

    def advance(self, profile: Profile, now: float) -> list[ChurnLabel | ProfileChange]:
        """Labels whose horizon has passed by ``now``, a check-in or a refresh if due."""
        state = profile.churn
        outputs: list[ChurnLabel | ProfileChange] = []
        horizon = self.config.horizon
        while state.pending and state.pending[0].at + horizon <= now:
            outputs.append(self._label(profile, state.pending.pop(0)))
        checkin = self._next_checkin(profile)
        if checkin is not None and checkin <= now:
            state.checked_in_at = checkin
            outputs.extend(self._snapshot(profile, checkin, "checkin", f"checkin@{checkin:.0f}"))
        refresh = self._next_refresh(profile)
        if refresh is not None and refresh <= now:
            outputs.extend(self.rescore(profile, refresh))
        self._reschedule(profile)
        return outputs

    def rescore(self, profile: Profile, at: float) -> list[ChurnLabel | ProfileChange]:
        """Score ``profile`` as of ``at`` with the newest model, taking no snapshot: its
        risk and band are then as of ``at``."""
        if profile.customer_id is None or profile.orders.last_order_at is None:
            return []
        profile.churn.refreshed_at = at
        values = features(profile, at, self.config.horizon / DAY)
        scored = self._score(profile, self._scorer().score(values), at, f"refresh@{at:.0f}")
        self._reschedule(profile)
        return scored

    # --- inside ---------------------------------------------------------------------------

    def _snapshot(
        self, profile: Profile, at: float, kind: SnapshotKind, cause: str
    ) -> list[ChurnLabel | ProfileChange]:
        state = profile.churn
        scorer = self._scorer()
        values = features(profile, at, self.config.horizon / DAY)
        score = scorer.score(values)
        if len(state.pending) < MAX_PENDING_SNAPSHOTS:
            # Bounded: past it, no snapshot until the oldest is labelled at its horizon
            # (releasing it early as retained would teach the learner a world with less
            # churn; docs/churn.md). The score still becomes the risk.
            count = profile.orders.count
            state.pending.append(ChurnSnapshot(at, kind, values, score, scorer.version, count))
        else:
            state.skipped += 1
        return self._score(profile, score, at, cause)

    def _score(
        self, profile: Profile, score: float | None, at: float, cause: str
    ) -> list[ChurnLabel | ProfileChange]:
        """Make ``score`` the profile's risk as of ``at``; a band move is a change."""
        state = profile.churn
        out: list[ChurnLabel | ProfileChange] = []
        if score is None:
            return out
        state.risk, state.risk_at = round(score, 4), at
        band = state.band
        if score >= self.config.high:
            state.band = "high"
        elif score <= self.config.low:
            state.band = "low"
        else:  # between the thresholds the band stays (hysteresis)
            state.band = band or "low"
        if state.band == band or (band is None and state.band == "low"):
            return out  # no move, or a first score that is not high: nothing to report
        out.append(
            ProfileChange.make("churn_risk_changed", profile.key, band, state.band, at, cause)
        )
        return out

    def _label(self, profile: Profile, snapshot: ChurnSnapshot) -> ChurnLabel:
        """The snapshot's label, put out at its horizon."""
        churned = profile.orders.count <= snapshot.orders
        digest = hashlib.blake2b(
            f"{profile.key}\x1f{snapshot.at!r}\x1f{snapshot.kind}".encode(), digest_size=10
        ).hexdigest()
        return ChurnLabel(
            label_id=digest,
            profile_key=profile.key,
            snapshot_at=snapshot.at,
            kind=snapshot.kind,
            values=snapshot.values,
            churned=churned,
            score=snapshot.score,
            version=snapshot.version,
            at=snapshot.at + self.config.horizon,
        )

    def _next_checkin(self, profile: Profile) -> float | None:
        config, last = self.config, profile.orders.last_order_at
        if not config.checkin or last is None or profile.customer_id is None:
            return None
        checked = profile.churn.checked_in_at
        due = (last if checked is None or checked < last else checked) + config.checkin
        return due if due - last <= config.checkin_until else None

    def _next_refresh(self, profile: Profile) -> float | None:
        """When the risk is refreshed: ``refresh`` after the newest of the last order,
        check-in, snapshot or refresh (a score given at any of them)."""
        refresh, last = self.config.refresh, profile.orders.last_order_at
        if not refresh or last is None or profile.customer_id is None:
            return None
        state = profile.churn
        latest = max(
            last,
            state.checked_in_at or last,
            state.refreshed_at or last,
            state.pending[-1].at if state.pending else last,
        )
        return latest + refresh

    def _reschedule(self, profile: Profile) -> None:
        state = profile.churn
        times = [state.pending[0].at + self.config.horizon] if state.pending else []
        for moment in (self._next_checkin(profile), self._next_refresh(profile)):
            if moment is not None:
                times.append(moment)
        state.next_due_at = min(times) if times else None
