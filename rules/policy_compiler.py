"""Compiled policies (``rules/policies.yaml``): channels and whether they need consent,
frequency caps, quiet hours, the default time zone and coupon pools.

>>> policies = Policies.default()
>>> policies.channels["email"][0], policies.channels["support_team"][0]
(True, False)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rules.coupon_pools import PoolFileError, read_pool
from rules.journey_spec import (
    MessagesSpec,
    OperatorRules,
    PoliciesSpec,
)
from rules.journey_steps import JourneyError, checked_duration, unknown_name
from schemas.limits import known_time_zone


@dataclass(frozen=True)
class Cap:
    channel: str
    max: int
    seconds: float


@dataclass(frozen=True)
class Policies:
    #: channel -> (needs consent, known templates)
    channels: Mapping[str, tuple[bool, frozenset[str]]]
    caps: tuple[Cap, ...] = ()
    #: (start, end) as minutes after local midnight, and the zone for customers without one.
    quiet_hours: tuple[int, int] | None = None
    default_time_zone: str = "UTC"
    #: pool name -> its codes in file order
    coupon_pools: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    #: Locales, currency and shop of the message templates (``rules/templates/``).
    messages: MessagesSpec = dataclasses.field(default_factory=MessagesSpec)
    #: channel -> its quiet window (minutes after local midnight, start and end): the
    #: complement of its ``send_window``.
    channel_quiet: Mapping[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    #: channel -> the SMS operator rules it follows.
    operator_rules: Mapping[str, OperatorRules] = dataclasses.field(default_factory=dict)

    @classmethod
    def default(cls) -> Policies:
        return compile_policies(PoliciesSpec())

    @property
    def longest_cap_seconds(self) -> float:
        return max((cap.seconds for cap in self.caps), default=0.0)


# --- compiling policies --------------------------------------------------------------------------------

#: Channels every deployment has, before policies.yaml adds its own.
BUILTIN_CHANNELS: dict[str, bool] = {
    "email": True,
    "sms": True,
    "push": True,
    "whatsapp": True,
    "in_app": True,
    "support_team": False,
    "webhook": False,
}


def compile_policies(
    spec: PoliciesSpec, loc: Sequence[str | int] = (), base: Path | None = None
) -> Policies:
    """Check and compile ``spec``; coupon pool files are read relative to ``base``."""
    channels: dict[str, tuple[bool, frozenset[str]]] = {
        name: (consent, frozenset()) for name, consent in BUILTIN_CHANNELS.items()
    }
    channel_quiet: dict[str, tuple[int, int]] = {}
    operator_rules: dict[str, OperatorRules] = {}
    for name, channel in spec.channels.items():
        channels[name] = (channel.needs_consent, frozenset(channel.templates))
        if channel.send_window is not None:
            opens, closes = _minutes(channel.send_window.start), _minutes(channel.send_window.end)
            if opens == closes:
                raise JourneyError(
                    [*loc, "channels", name, "send_window"],
                    "start and end are the same time: leave send_window out to send any time",
                )
            channel_quiet[name] = (closes, opens)
        if channel.operator_rules is not None:
            operator_rules[name] = channel.operator_rules
    caps = []
    for index, cap in enumerate(spec.frequency_caps):
        if cap.channel != "any" and cap.channel not in channels:
            raise JourneyError(
                [*loc, "frequency_caps", index, "channel"],
                unknown_name("channel", cap.channel, channels),
            )
        caps.append(
            Cap(
                cap.channel,
                cap.max,
                checked_duration(cap.per, [*loc, "frequency_caps", index, "per"]),
            )
        )
    quiet = None
    zone = "UTC"
    if spec.quiet_hours is not None:
        quiet = (_minutes(spec.quiet_hours.start), _minutes(spec.quiet_hours.end))
        zone = spec.quiet_hours.default_time_zone
        if not known_time_zone(zone):
            raise JourneyError(
                [*loc, "quiet_hours", "default_time_zone"], f"unknown time zone {zone!r}"
            )
    pools = _coupon_pools(spec, loc, base or Path("."))
    return Policies(
        channels, tuple(caps), quiet, zone, pools, spec.messages, channel_quiet, operator_rules
    )


def _coupon_pools(
    spec: PoliciesSpec, loc: Sequence[str | int], base: Path
) -> dict[str, tuple[str, ...]]:
    pools: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for name, pool in spec.coupon_pools.items():
        where = [*loc, "coupon_pools", name, "file"]
        path = base / pool.file
        if not path.resolve().is_relative_to(base.resolve()):
            raise JourneyError(
                where, f"{pool.file!r} is outside the rules directory; keep coupon files in it"
            )
        try:
            codes = read_pool(path)
        except PoolFileError as error:
            raise JourneyError(where, str(error)) from error
        for code in codes:
            if code in owner:
                raise JourneyError(where, f"code {code!r} is also in pool {owner[code]!r}")
            owner[code] = name
        pools[name] = codes
    return pools


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)
