"""What journeys put out: actions to deliver (or not, with the reason) and run milestones.

Every record has a deterministic id built from what caused it, so a replay gives the same
ids and a redelivery can be recognised downstream.

>>> action_id("cart_recovery", 1, "c1", "k1", "e9") == action_id("cart_recovery", 1, "c1", "k1", "e9")
True
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

from state.journey_runs import ContextValue

ActionStatus = Literal["sent", "suppressed", "deferred"]
SuppressionReason = Literal[
    "holdout",
    "no_consent",
    "frequency_cap",
    "quiet_hours",
    "unknown_address",
    "exited",
    "coupon_pool_empty",
    "template_error",
    "send_window",
    "unreachable",
]
MilestoneKind = Literal["entered", "exited", "completed", "converted", "coupon_redeemed"]


def _digest(*parts: object) -> str:
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def action_id(
    journey_id: str, step: int, profile_key: str, entity: str | None, trigger: str
) -> str:
    """(journey, step, customer, entity, trigger event): the same inputs, the same id."""
    return _digest("action", journey_id, step, profile_key, entity, trigger)


def milestone_id(kind: str, run: str, cause: str) -> str:
    """(kind, run, cause): the same milestone, the same id."""
    return _digest(kind, run, cause)


def routing_id(profile_key: str, ticket_id: str, cause: str) -> str:
    """(customer, ticket, the opening event): the same routing decision, the same id."""
    return _digest("routing", profile_key, ticket_id, cause)


def run_id(journey_id: str, profile_key: str, entity: str | None, trigger: str) -> str:
    return _digest("run", journey_id, profile_key, entity, trigger)


class Coupon(msgspec.Struct, kw_only=True, frozen=True):
    code: str
    percent: int | None = None
    amount: float | None = None
    valid_until: float
    #: The pool the code was taken from; None for a code derived from the action id.
    pool: str | None = None


class Message(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """A send's rendered message (``rules/templates/``): the parts its channel has."""

    locale: str
    subject: str | None = None
    title: str | None = None
    text: str | None = None
    body: str | None = None
    html: str | None = None
    link: str | None = None
    #: The customer's signed unsubscribe link for this channel (``List-Unsubscribe``).
    unsubscribe: str | None = None
    #: SMS: how many segments the text takes (160 or 153 GSM characters, 70 or 67 UCS-2).
    segments: int | None = None


class Action(msgspec.Struct, kw_only=True, frozen=True, tag="action", tag_field="record"):
    """A send or an emitted event, with what happened to it.

    ``sent`` goes to delivery; ``suppressed`` never will (``reason`` says why);
    ``deferred`` will be tried again at ``retry_at``. A deferral has an id of its own and
    names the action it postpones in ``defers``, so no id is ever put out twice.
    """

    action_id: str
    defers: str | None = None
    status: ActionStatus
    reason: SuppressionReason | None = None
    kind: Literal["send", "emit"]
    journey_id: str
    step: int
    arm: str
    profile_key: str
    customer_id: str | None
    entity: str | None
    trigger: str
    at: float
    channel: str | None = None
    #: The channel needs the customer's consent: delivery checks it again before sending.
    needs_consent: bool = False
    #: The email or phone to send to, only with ``profile.privacy.keep_contacts`` on.
    address: str | None = None
    template: str | None = None
    event: str | None = None
    payload: dict[str, ContextValue] = {}
    coupon: Coupon | None = None
    retry_at: float | None = None
    #: What the customer receives, rendered from the template (None without templates).
    message: Message | None = None
    #: Why a send with reason ``template_error`` could not be rendered.
    detail: str | None = None


class JourneyMilestone(
    msgspec.Struct,
    kw_only=True,
    frozen=True,
    tag="milestone",
    tag_field="record",
    omit_defaults=True,
):
    """A run entered, exited (``cause``: the exit event), completed or converted (goal met),
    or a coupon it issued redeemed by an order (``cause``: the order event)."""

    milestone_id: str
    kind: MilestoneKind
    journey_id: str
    run_id: str
    arm: str
    profile_key: str
    entity: str | None
    at: float
    cause: str
    #: ``converted`` by an order and ``coupon_redeemed``: the order's total.
    value: float | None = None
    #: ``coupon_redeemed``: the code, the discount it gave, and the send that issued it.
    coupon: str | None = None
    discount: float | None = None
    action_id: str | None = None

    @classmethod
    def make(
        cls,
        kind: MilestoneKind,
        journey_id: str,
        run: str,
        arm: str,
        profile_key: str,
        entity: str | None,
        at: float,
        cause: str,
        value: float | None = None,
    ) -> JourneyMilestone:
        return cls(
            milestone_id=milestone_id(kind, run, cause),
            kind=kind,
            journey_id=journey_id,
            run_id=run,
            arm=arm,
            profile_key=profile_key,
            entity=entity,
            at=at,
            cause=cause,
            value=value,
        )


JourneyOutput = Action | JourneyMilestone
