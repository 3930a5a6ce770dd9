"""The business thresholds behind derived profile fields (lifecycle, tiers, RFM) and the
support targets the KPIs measure against.

Each field is declared once with its default and meaning; ``config/defaults.yaml``
is generated from these models and settings override them per deployment.

>>> LifecyclePolicy().at_risk_after_days
60
>>> TierPolicy().tier_for(2500.0)
'gold'
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

#: The shortest contact digest key accepted (256 bits of a random text's worth).
MIN_CONTACT_KEY_BYTES = 32


class _Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LifecyclePolicy(_Policy):
    """Stages by days since the last order; see docs/profile.md for the full rules."""

    new_for_days: int = Field(30, ge=1, description="A first-time buyer is `new` this long.")
    at_risk_after_days: int = Field(60, ge=1, description="No order for this long: `at_risk`.")
    dormant_after_days: int = Field(120, ge=1, description="No order for this long: `dormant`.")
    churned_after_days: int = Field(180, ge=1, description="No order for this long: `churned`.")

    @model_validator(mode="after")
    def _ordered(self) -> LifecyclePolicy:
        if not (
            self.new_for_days
            <= self.at_risk_after_days
            < self.dormant_after_days
            < self.churned_after_days
        ):
            raise ValueError(
                "lifecycle thresholds must satisfy new_for_days <= at_risk_after_days"
                " < dormant_after_days < churned_after_days"
            )
        return self


class TierLevel(_Policy):
    name: str = Field(pattern="^[a-z][a-z0-9_]*$")
    min_spend: float = Field(0, ge=0, description="Net spend over the qualifying months.")
    min_growth: int | None = Field(
        None, ge=0, description="Growth value over the qualifying months (basis: growth)."
    )

    def threshold(self, basis: str) -> float:
        if basis == "growth":
            return float(self.min_growth or 0)
        return self.min_spend


class GrowthRules(_Policy):
    """What earns growth value (成长值), counted over the qualifying months like spend."""

    per_currency_unit: float = Field(
        1.0, ge=0, le=1000, description="Per unit of net spend (refunds and cancellations off)."
    )
    review: int = Field(10, ge=0, le=100_000, description="For each review written.")
    check_in: int = Field(1, ge=0, le=100_000, description="For each day checked in.")


class TierPolicy(_Policy):
    """Membership tiers from net spend, or growth value, over a trailing window of calendar
    months: up at once, down after ``downgrade_grace_days``."""

    qualifying_months: int = Field(
        12, ge=1, le=12, description="Months of spend that count, the current one included."
    )
    basis: Literal["spend", "growth"] = Field(
        "spend", description="What the levels' thresholds are: min_spend or min_growth."
    )
    growth: GrowthRules = GrowthRules()
    downgrade_grace_days: int = Field(
        0,
        ge=0,
        le=366,
        description="A customer who falls below their tier keeps it this long (0: at once).",
    )
    levels: tuple[TierLevel, ...] = Field(
        default=(
            TierLevel(name="member", min_spend=0),
            TierLevel(name="silver", min_spend=500),
            TierLevel(name="gold", min_spend=2000),
            TierLevel(name="platinum", min_spend=10000),
        ),
        description="Lowest first; the first level must start at 0.",
    )

    @model_validator(mode="after")
    def _ascending(self) -> TierPolicy:
        field = "min_growth" if self.basis == "growth" else "min_spend"
        if self.basis == "growth":
            missing = [level.name for level in self.levels if level.min_growth is None]
            if missing:
                raise ValueError(f"tiers on growth need min_growth on every level: {missing}")
        values = [level.threshold(self.basis) for level in self.levels]
        if (
            not values
            or values[0] != 0
            or values != sorted(values)
            or len(set(values)) != len(values)
        ):
            raise ValueError(f"tier levels need strictly ascending {field} starting at 0")
        return self

    def tier_for(self, value: float) -> str:
        """The tier a qualifying spend (or growth value) reaches."""
        name = self.levels[0].name
        for level in self.levels:
            if value >= level.threshold(self.basis):
                name = level.name
        return name

    def next_above(self, value: float) -> TierLevel | None:
        """The first level ``value`` has not reached; None at the top."""
        return next((lv for lv in self.levels if value < lv.threshold(self.basis)), None)

    def rank(self, name: str) -> int:
        for index, level in enumerate(self.levels):
            if level.name == name:
                return index
        return -1


class RfmPolicy(_Policy):
    """Score breakpoints (1..5). Fixed breakpoints keep a profile independent of other customers.

    Defaults are the quintiles of the 4,339 buying customers of the UCI Online Retail log
    (recency measured at 2011-12-10), rounded.
    """

    recency_days: tuple[int, int, int, int] = Field(
        (12, 32, 71, 179), description="Days since last order; at most the first value scores 5."
    )
    frequency_orders: tuple[int, int, int, int] = Field(
        (1, 2, 3, 6), description="Orders; more than the last value scores 5."
    )
    monetary_spend: tuple[float, float, float, float] = Field(
        (240.0, 470.0, 915.0, 2020.0), description="Net spend; more than the last value scores 5."
    )


class SupportPolicy(_Policy):
    """Service targets the support KPIs are measured against."""

    first_response_sla_hours: dict[str, float] = Field(
        default={"urgent": 1.0, "high": 4.0, "normal": 24.0, "low": 72.0},
        description="Hours allowed until the first agent response, per ticket priority "
        "(low, normal, high, urgent). Keep them equal to the sla_escalation journey's waits.",
    )

    @model_validator(mode="after")
    def _priorities(self) -> SupportPolicy:
        known = {"low", "normal", "high", "urgent"}
        unknown = sorted(set(self.first_response_sla_hours) - known)
        missing = sorted(known - set(self.first_response_sla_hours))
        if unknown or missing:
            raise ValueError(
                f"first_response_sla_hours needs exactly the priorities {sorted(known)}"
                + (f"; unknown: {unknown}" if unknown else "")
                + (f"; missing: {missing}" if missing else "")
            )
        if any(hours <= 0 for hours in self.first_response_sla_hours.values()):
            raise ValueError("first_response_sla_hours must all be above 0")
        return self

    def sla_seconds(self, priority: str) -> float:
        return self.first_response_sla_hours.get(priority, 24.0) * 3600.0


class PrivacyPolicy(_Policy):
    """What Rapport keeps about people, and for how long (docs/privacy.md)."""

    retention_days: int = Field(
        1095,
        ge=0,
        description="A profile with no event for this long is anonymised: removed with "
        "everything keyed to it, as an erasure is; 0 keeps profiles forever.",
    )
    keep_contacts: bool = Field(
        False,
        description="Also keep email and phone in plain form (traits `email`, `phone`), so "
        "that sends on email, sms and whatsapp carry the address (`address`) for the "
        "receiver. Off: at most their keyed digests are kept and receivers look addresses "
        "up by customer id.",
    )
    keep_text_chars: int = Field(
        0,
        ge=0,
        le=512,
        description="Keep this many characters of each ticket's subject on the profile "
        "(for agents' context in the read model and templates: `ticket.excerpt`). 0: no "
        "text customers write is kept; it is read once for sentiment and routing. Kept "
        "text is erased with the profile.",
    )
    contact_key: SecretStr | None = Field(
        None,
        description="Secret key (at least 32 characters) of the email and phone digests "
        "(HMAC-SHA256, traits `email_digest`, `phone_digest`); unset: no digest is kept.",
    )
    contact_key_file: Path | None = Field(
        None, description="File holding `contact_key` (instead of the setting itself)."
    )
    contact_key_id: str = Field(
        "k1",
        pattern=r"^[a-z0-9]{1,8}$",
        description="Names the key in every digest it makes (`k1:<hex>`): change it with "
        "the key, so digests of the old key are told apart (docs/privacy.md, rotation).",
    )

    @model_validator(mode="after")
    def _key_length(self) -> PrivacyPolicy:
        key = self.key()
        if key is not None and len(key) < MIN_CONTACT_KEY_BYTES:
            raise ValueError(
                f"profile.privacy.contact_key: at least {MIN_CONTACT_KEY_BYTES} characters, "
                f"got {len(key)}"
            )
        return self

    def key(self) -> bytes | None:
        """The digest key, from ``contact_key`` or ``contact_key_file``; None: no digests."""
        if self.contact_key is not None:
            return self.contact_key.get_secret_value().encode()
        if self.contact_key_file is not None:
            try:
                return self.contact_key_file.read_bytes().strip()
            except OSError as error:
                raise ValueError(
                    f"profile.privacy.contact_key_file: cannot read {self.contact_key_file}: "
                    f"{error.strerror}"
                ) from error
        return None

    @property
    def retention_seconds(self) -> float | None:
        return self.retention_days * 86_400.0 if self.retention_days else None


class ProfilePolicy(_Policy):
    lifecycle: LifecyclePolicy = LifecyclePolicy()
    tiers: TierPolicy = TierPolicy()
    rfm: RfmPolicy = RfmPolicy()
    support: SupportPolicy = SupportPolicy()
    privacy: PrivacyPolicy = PrivacyPolicy()
