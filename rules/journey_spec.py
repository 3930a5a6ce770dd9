"""Journey files as marketers write them: the YAML shape, validated by pydantic.

One journey per file in ``rules/journeys/``. ``rules/journey_compiler.py`` turns a
validated spec into a runnable ``Journey``; this module only says what may be written.

>>> spec = JourneySpec.model_validate({
...     "id": "cart_recovery",
...     "trigger": {"event": "cart.item_added"},
...     "entity": "cart_id",
...     "steps": [{"wait": "1h"}, {"send": {"channel": "email", "template": "cart_reminder"}}],
... })
>>> [type(step).__name__ for step in spec.steps]
['WaitStep', 'SendStep']
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag

JourneyId = Annotated[str, StringConstraints(pattern="^[a-z][a-z0-9_]{0,47}$")]
StepId = Annotated[str, StringConstraints(pattern="^[a-z][a-z0-9_]{0,47}$")]
LocalTime = Annotated[str, StringConstraints(pattern="^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Scalar = str | int | float | bool


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventTrigger(_Spec):
    event: str = Field(description="Event kind that starts the journey, e.g. cart.item_added.")
    when: str | None = Field(
        default=None, description="Condition on the profile and `event.<property>`."
    )


class ChangeTrigger(_Spec):
    change: Literal[
        "tier_changed", "lifecycle_changed", "tag_added", "tag_removed", "churn_risk_changed"
    ] = Field(description="The profile change that starts the journey.")
    to: str | None = Field(
        default=None,
        description="Only changes to this value (tier, stage, churn risk band `high`/`low`).",
    )
    tag: str | None = Field(default=None, description="For tag_added / tag_removed: which tag.")
    when: str | None = Field(default=None, description="Condition on the profile.")


class InactivityTrigger(_Spec):
    inactivity: str = Field(description="No event from the customer for this long, e.g. 30d.")
    when: str | None = Field(default=None, description="Condition on the profile.")


class AnniversaryTrigger(_Spec):
    anniversary: Literal["birthday"] = Field(description="A yearly date from the profile.")
    at: LocalTime = Field(default="09:00", description="Local time of day it fires.")
    when: str | None = Field(default=None, description="Condition on the profile.")


class PointsExpiringTrigger(_Spec):
    points_expiring: str = Field(
        description="Spendable loyalty points expire within this long, e.g. 30d. Messages "
        "read `event.points` (how many), `event.expires_at` and `event.days_to_expiry`."
    )
    at_least: int = Field(default=1, ge=1, description="Only when at least this many expire.")
    when: str | None = Field(default=None, description="Condition on the profile.")


class WaitUntil(_Spec):
    until: LocalTime = Field(description="Next occurrence of this local time (customer's zone).")


class WaitPer(_Spec):
    per: str = Field(description="`event.<property>` of the trigger that picks the duration.")
    durations: dict[str, str] = Field(description="Property value -> duration.")
    default: str = Field(description="Duration for any other value.")


class WaitStep(_Spec):
    id: StepId | None = None
    wait: str | WaitUntil | WaitPer = Field(
        description="A duration (1h, 2d), {until: 'HH:MM'}, or {per: event.x, durations: {...}}."
    )


class CouponSpec(_Spec):
    percent: int | None = Field(default=None, ge=1, le=100)
    amount: float | None = Field(default=None, gt=0)
    valid_for: str = Field(description="How long the code stays valid, e.g. 48h.")
    pool: str | None = Field(
        default=None,
        description="A pool from policies.yaml `coupon_pools` to take the code from; "
        "without one the code is derived from the action id.",
    )


class Send(_Spec):
    channel: str = Field(description="A channel from policies.yaml, e.g. email.")
    template: str = Field(description="A template listed for that channel in policies.yaml.")
    payload: dict[str, str] = Field(
        default_factory=dict,
        description="Payload fields: name -> profile name or `event.<property>` of the trigger.",
    )
    coupon: CouponSpec | None = None


class SendStep(_Spec):
    id: StepId | None = None
    send: Send


class BranchSpec(_Spec):
    when: str = Field(description="Condition on the profile and the trigger's `event.<property>`.")
    goto: StepId = Field(description="Step to continue at when the condition holds.")
    otherwise: StepId | None = Field(
        default=None, description="Step to continue at otherwise (default: the next step)."
    )


class BranchStep(_Spec):
    id: StepId | None = None
    branch: BranchSpec


class TagStep(_Spec):
    id: StepId | None = None
    tag: str


class UntagStep(_Spec):
    id: StepId | None = None
    untag: str


class EmitSpec(_Spec):
    event: str = Field(description="A name for the emitted event, e.g. support.escalated.")
    payload: dict[str, str] = Field(default_factory=dict)


class EmitStep(_Spec):
    id: StepId | None = None
    emit: EmitSpec


class PointsStep(_Spec):
    id: StepId | None = None
    points: int = Field(
        ge=1,
        le=1_000_000,
        description="Loyalty points to give (needs loyalty.yaml); the holdout gets none.",
    )


class ExitStep(_Spec):
    id: StepId | None = None
    exit: Literal[True]


STEP_KINDS = ("wait", "send", "branch", "tag", "untag", "emit", "points", "exit")
TRIGGER_KINDS = ("event", "change", "inactivity", "anniversary", "points_expiring")


def _kind_of(kinds: tuple[str, ...]) -> Any:
    def kind(value: Any) -> str | None:
        if isinstance(value, dict):
            return next((k for k in kinds if k in value), None)
        return next((k for k in kinds if hasattr(value, k)), None)

    return kind


Step = Annotated[
    Annotated[WaitStep, Tag("wait")]
    | Annotated[SendStep, Tag("send")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[TagStep, Tag("tag")]
    | Annotated[UntagStep, Tag("untag")]
    | Annotated[EmitStep, Tag("emit")]
    | Annotated[PointsStep, Tag("points")]
    | Annotated[ExitStep, Tag("exit")],
    Discriminator(
        _kind_of(STEP_KINDS),
        custom_error_type="unknown_step",
        custom_error_message=f"a step needs one of: {', '.join(STEP_KINDS)}",
    ),
]
Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[ChangeTrigger, Tag("change")]
    | Annotated[InactivityTrigger, Tag("inactivity")]
    | Annotated[AnniversaryTrigger, Tag("anniversary")]
    | Annotated[PointsExpiringTrigger, Tag("points_expiring")],
    Discriminator(
        _kind_of(TRIGGER_KINDS),
        custom_error_type="unknown_trigger",
        custom_error_message=f"a trigger needs one of: {', '.join(TRIGGER_KINDS)}",
    ),
]


class ExitSpec(_Spec):
    event: str
    when: str = Field(description="Condition on the profile and this event's `event.<property>`.")


class Reentry(_Spec):
    cooldown: str | None = Field(default=None, description="Minimum time between two entries.")
    max_entries: int | None = Field(default=None, ge=1, description="Entries per customer, ever.")
    same_entity: bool = Field(
        default=False,
        description="In a journey with an `entity`: may a cart (ticket, order) whose run "
        "finished start the journey again? Off: a finished entity is done for good.",
    )


class Goal(_Spec):
    event: str
    within: str


class Variant(_Spec):
    id: StepId
    weight: int = Field(ge=1, le=1000)
    templates: dict[str, str] = Field(
        default_factory=dict,
        description="Template replacements in this arm: step template -> template.",
    )


class JourneySpec(_Spec):
    id: JourneyId
    description: str = ""
    enabled: bool = True
    priority: int = Field(default=50, ge=0, le=100, description="Higher wins when sends collide.")
    trigger: Trigger
    also_on: list[EventTrigger] = Field(
        default_factory=list,
        max_length=10,
        description="More events that start the journey, each with its own condition (with "
        "an event trigger only). A payload's `event.<property>` that such an event lacks "
        "reads as nil.",
    )
    entity: str | None = Field(
        default=None, description="Scope runs, exits and goals to one entity, e.g. cart_id."
    )
    exit_on: list[str | ExitSpec] = Field(
        default_factory=list,
        description="Event kinds that end a run: a kind, or {event, when} to end it only when "
        "the condition holds for that event.",
    )
    reentry: Reentry = Reentry()
    on_cap: Literal["defer", "drop"] = Field(
        default="defer", description="What a send does when a frequency cap is reached."
    )
    holdout: Annotated[float, Field(ge=0, le=0.5)] = Field(
        default=0.0, description="Share of customers whose sends are suppressed (reason holdout)."
    )
    variants: list[Variant] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)
    goal: Goal | None = None


class SendWindow(_Spec):
    start: LocalTime
    end: LocalTime


class OperatorRules(_Spec):
    """What Chinese mobile operators require of marketing SMS (工信部 rules)."""

    signature: str = Field(
        min_length=2,
        max_length=12,
        description="The shop's registered signature, put first as 【signature】.",
    )
    unsubscribe_line: str = Field(
        default="回T退订",
        min_length=2,
        max_length=20,
        description="Appended to every message that does not already say how to opt out.",
    )


class ChannelSpec(_Spec):
    needs_consent: bool = Field(
        default=True, description="Marketing channels need the customer's consent to send."
    )
    templates: list[str] = Field(default_factory=list)
    send_window: SendWindow | None = Field(
        default=None,
        description="Local hours this channel may send in (e.g. 08:00-22:00 for SMS in "
        "China); a send outside waits for the window to open.",
    )
    operator_rules: OperatorRules | None = Field(
        default=None,
        description="SMS only: signature prefix and opt-out line, as Chinese operators require.",
    )


class CouponPoolSpec(_Spec):
    file: str = Field(
        description="Codes, one per line (# comments allowed), relative to the rules directory."
    )


class FrequencyCap(_Spec):
    channel: str = Field(description="A channel, or `any` for all customer channels together.")
    max: int = Field(ge=1)
    per: str


class QuietHours(_Spec):
    start: LocalTime
    end: LocalTime
    default_time_zone: str = "UTC"


class ShopSpec(_Spec):
    name: str = Field(default="Rapport Shop", max_length=100)
    url: str = Field(
        default="https://shop.example",
        pattern="^https?://[^\\s]+$",
        max_length=200,
        description="The shop's address; links in messages (unsubscribe) start here.",
    )


class MessagesSpec(_Spec):
    default_locale: str = Field(
        default="en",
        pattern="^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        description="The locale of customers without a `locale` trait, or with one no "
        "template has: every template must have it.",
    )
    locales: list[str] = Field(
        default_factory=list,
        description="Locales every template must have, besides the default (e.g. zh-CN).",
    )
    currency: str = Field(
        default="GBP", pattern="^[A-Z]{3}$", description="ISO 4217 code the `money` filter uses."
    )
    shop: ShopSpec = Field(default_factory=ShopSpec)


class PoliciesSpec(_Spec):
    channels: dict[str, ChannelSpec] = Field(default_factory=dict)
    messages: MessagesSpec = Field(
        default_factory=MessagesSpec,
        description="Locales, currency and shop details of the message templates.",
    )
    frequency_caps: list[FrequencyCap] = Field(default_factory=list)
    quiet_hours: QuietHours | None = None
    coupon_pools: dict[str, CouponPoolSpec] = Field(
        default_factory=dict,
        description="Named pools of pre-issued coupon codes; each code is handed out once.",
    )
