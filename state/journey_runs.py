"""Journey state kept on each profile: runs in progress, entry history, goal windows, sends.

It lives in the profile so that it is stored, recovered and merged with it. The rules
that move it are in ``rules/journey_runtime.py``; here are only the records and bounds.

>>> state = JourneyState()
>>> state.runs, state.next_due_at
({}, None)
"""

from __future__ import annotations

from typing import Final

import msgspec

#: Bounds: a customer's journey state stays small whatever the rules do.
MAX_RUNS: Final = 32
MAX_GOAL_WATCHES: Final = 32
MAX_EXIT_MEMORY: Final = 32
MAX_SENDS_KEPT: Final = 64
#: Coupons issued and still matched against orders (the oldest is forgotten first).
MAX_COUPONS_KEPT: Final = 16
#: How long after ``valid_until`` a coupon is still matched (a shop that took it late).
COUPON_LATE_USE_SECONDS: Final = 30 * 86_400

ContextValue = str | int | float | bool | list[str] | None


class JourneyRun(msgspec.Struct, kw_only=True):
    """One customer's pass through one journey (for one entity, when scoped)."""

    run_id: str
    journey_id: str
    entity: str | None
    #: The event id (or change id, or ``inactive@<epoch>``) that started the run.
    trigger: str
    entered_at: float
    #: ``holdout`` or the variant id (``main`` without variants).
    arm: str
    #: Index of the next step to execute, and when.
    step: int = 0
    due_at: float = 0.0
    #: The earliest exit event seen at or after entry; steps due later never run.
    exit_at: float | None = None
    exit_cause: str | None = None
    #: False until the watermark passes ``entered_at``: until then an earlier trigger
    #: may still re-anchor the run and an exit may still cancel it before it began.
    entered: bool = False
    #: The earliest goal event seen for this run while it was not yet entered.
    goal_at: float | None = None
    goal_cause: str | None = None
    #: That goal event's order total, when it was an order (revenue per customer).
    goal_value: float | None = None
    #: How often the current step was deferred (quiet hours, caps).
    deferrals: int = 0
    #: Trigger event properties named in payloads, captured at entry.
    context: dict[str, ContextValue] = {}
    #: A message this run sent was opened / clicked (``message.*`` naming its action).
    opened: bool = False
    clicked: bool = False


class GoalWatch(msgspec.Struct, kw_only=True, gc=False):
    """A run whose conversion is still counted: the goal event may come until ``until``."""

    run_id: str
    journey_id: str
    entity: str | None
    arm: str
    entered_at: float
    until: float


class IssuedCoupon(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    """A coupon a send gave this customer, kept so that an order using it is matched to
    the send, journey and arm that issued it (``rules/attribution.py``); dropped once
    redeemed, and 30 days after it stopped being valid."""

    #: As issued; matched without regard to case or surrounding spaces.
    code: str
    action_id: str
    journey_id: str
    run_id: str
    arm: str
    entity: str | None
    issued_at: float
    valid_until: float
    percent: int | None = None
    amount: float | None = None


class JourneyHistory(msgspec.Struct, kw_only=True, gc=False):
    entries: int = 0
    last_entered_at: float | None = None


class JourneyState(msgspec.Struct, kw_only=True):
    #: Runs in progress by ``<journey id>|<entity>``.
    runs: dict[str, JourneyRun] = {}
    history: dict[str, JourneyHistory] = {}
    goal_watches: list[GoalWatch] = []
    #: Exit events seen per ``<journey id>|<entity>`` (earliest time): an entity-scoped
    #: trigger that arrives after its entity was finished does not start a run.
    exits_seen: dict[str, float] = {}
    #: Send times per channel (newest last), for frequency caps.
    sends: dict[str, list[float]] = {}
    #: Per time-triggered journey: what it last fired for (the ``last_seen_at`` of an
    #: inactivity trigger, the moment of a yearly one).
    time_triggers_fired: dict[str, float] = {}
    #: Per time-triggered journey: when to look at it next (not moved by every event: a
    #: check that comes early finds the customer active and re-arms).
    time_checks: dict[str, float] = {}
    #: Coupons issued to this customer, oldest first (at most ``MAX_COUPONS_KEPT``).
    coupons: list[IssuedCoupon] = []
    #: The earliest moment a run step, a deferred send or a time trigger is due.
    next_due_at: float | None = None


def run_key(journey_id: str, entity: str | None) -> str:
    return f"{journey_id}|{entity or ''}"
