"""``loyalty.yaml``: the shop's points program, as marketers write it, and its compilation
into the ``LoyaltyProgram`` the ledger applies (``state/loyalty.py``).

>>> spec = LoyaltySpec.model_validate({"points": {"per_currency_unit": 1,
...     "tier_multipliers": {"gold": 1.5}, "member_days": [{"weekday": "wednesday", "multiplier": 2}]}})
>>> program = compile_loyalty(spec)
>>> program.tier_multipliers["gold"], program.member_days[0].weekday
(Decimal('1.5'), 2)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from state.loyalty import LoyaltyProgram, MemberDay

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LOYALTY_FILE = "loyalty.yaml"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MemberDaySpec(_Spec):
    """A day whose earnings are multiplied: a weekday every week, or a date every year."""

    weekday: Literal[WEEKDAYS] | None = Field(None, description="Every week on this day.")  # type: ignore[valid-type]
    date: str | None = Field(
        None, pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", description="MM-DD, yearly."
    )
    multiplier: float = Field(gt=0, le=100, description="Earnings are multiplied by this.")

    @model_validator(mode="after")
    def _one_day(self) -> MemberDaySpec:
        if (self.weekday is None) == (self.date is None):
            raise ValueError("a member day has either a weekday or a date")
        return self


EarningKind = Literal["order", "review"]


def _orders_only() -> list[EarningKind]:
    return ["order"]


class PointsSpec(_Spec):
    """How points are earned, when they can be spent, and when they expire."""

    per_currency_unit: float = Field(
        1, ge=0, le=1000, description="Points per unit of an order's total (rounded down)."
    )
    tier_multipliers: dict[str, float] = Field(
        default_factory=dict, description="Order points are multiplied by the customer's tier's."
    )
    member_days: list[MemberDaySpec] = Field(default_factory=list, max_length=50)
    member_days_apply_to: list[EarningKind] = Field(
        default_factory=_orders_only, description="Which earnings member days multiply."
    )
    time_zone: Literal["shop", "customer"] = Field(
        "shop", description="Whose calendar member days and the daily cap follow."
    )
    shop_time_zone: str = Field("UTC", description="The shop's IANA time zone.")
    pending_days: int = Field(
        14, ge=0, le=365, description="An order's points wait out the return window."
    )
    expiry_days: int = Field(365, ge=1, le=3650, description="Points expire this long after.")
    per_order_cap: int | None = Field(None, ge=1, description="At most this many per order.")
    daily_cap: int | None = Field(None, ge=1, description="At most this many per day.")
    review_points: int = Field(0, ge=0, le=1_000_000, description="For each review written.")
    registration_points: int = Field(0, ge=0, le=1_000_000, description="Once, on registering.")
    check_in_points: int = Field(
        0, ge=0, le=1_000_000, description="For each day checked in (member.checked_in)."
    )
    point_value: float = Field(0.01, ge=0, description="A point's worth in the shop's currency.")

    @field_validator("shop_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from error
        return value

    @field_validator("tier_multipliers")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for tier, factor in value.items():
            if not 0 < factor <= 100:
                raise ValueError(f"tier {tier!r}: a multiplier is above 0 and at most 100")
        return value


class LoyaltySpec(_Spec):
    """The whole file."""

    points: PointsSpec = Field(default_factory=PointsSpec)


def compile_loyalty(spec: LoyaltySpec) -> LoyaltyProgram:
    points = spec.points
    return LoyaltyProgram(
        per_unit=_decimal(points.per_currency_unit),
        tier_multipliers={tier: _decimal(f) for tier, f in points.tier_multipliers.items()},
        member_days=tuple(
            MemberDay(
                multiplier=_decimal(day.multiplier),
                weekday=None if day.weekday is None else WEEKDAYS.index(day.weekday),
                date=day.date,
            )
            for day in points.member_days
        ),
        member_day_kinds=frozenset(points.member_days_apply_to),
        pending_days=points.pending_days,
        expiry_days=points.expiry_days,
        per_order_cap=points.per_order_cap,
        daily_cap=points.daily_cap,
        review_points=points.review_points,
        registration_points=points.registration_points,
        check_in_points=points.check_in_points,
        time_zone=points.time_zone,
        shop_time_zone=points.shop_time_zone,
        point_value=_decimal(points.point_value),
    )


def _decimal(value: float) -> Decimal:
    """As written: 1.1 is 1.1, not the float nearest it."""
    return Decimal(str(value))
