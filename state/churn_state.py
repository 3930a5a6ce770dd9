"""What the churn model keeps on a profile: snapshots waiting for their label, and the risk.

A snapshot is the profile's churn features at one moment (an order, or a check-in after a
quiet spell), with the score the model gave then. Its label is decided when its horizon
has passed: ``churned`` if no order came after it, ``retained`` otherwise. The snapshots
live on the profile, so they move, restart and are erased with it.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

#: Snapshots waiting for their label; past it, no snapshot until the oldest is labelled.
MAX_PENDING_SNAPSHOTS: Final = 32

SnapshotKind = Literal["order", "checkin"]


class ChurnSnapshot(msgspec.Struct, gc=False, array_like=True):
    at: float
    kind: SnapshotKind
    #: Feature values in ``churn.features.FEATURES`` order.
    values: list[float]
    #: The model's churn probability when the snapshot was taken; None: no model ready.
    score: float | None
    #: The version of the model that gave the score (labels it had learned).
    version: int
    #: Orders the customer had placed when the snapshot was taken: any more by the
    #: horizon and the snapshot is ``retained`` (an order in the same second counts).
    orders: int


class ChurnState(msgspec.Struct):
    pending: list[ChurnSnapshot] = []
    #: The newest churn probability and when it was computed.
    risk: float | None = None
    risk_at: float | None = None
    #: ``high`` once risk reaches the upper threshold, ``low`` once it falls to the lower
    #: one (hysteresis); None until a model scores the profile.
    band: Literal["low", "high"] | None = None
    #: When the last check-in was taken (check-ins follow the last order or check-in).
    checked_in_at: float | None = None
    #: When the risk was last refreshed (scored with no snapshot).
    refreshed_at: float | None = None
    #: Snapshots not taken because ``MAX_PENDING_SNAPSHOTS`` were waiting.
    skipped: int = 0
    #: When the next label or check-in is due.
    next_due_at: float | None = None
