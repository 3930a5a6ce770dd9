"""The send gate: whether a journey's send goes out now, waits, or is suppressed, and why.

Every send a journey makes passes here (``rules/journey_runtime.py``), in this order:

1. **holdout**: a run in the holdout arm sends nothing (suppressed, ``holdout``);
2. **consent**: a channel that needs consent (``policies.yaml: channels``) needs the
   customer's (suppressed, ``no_consent``), and must still reach them: after a hard
   bounce or a spam complaint it does not, until the address changes (``unreachable``);
3. **quiet hours**: inside the quiet window, in the customer's time zone (the
   ``time_zone`` trait, else ``default_time_zone``), the send is deferred to the window's
   end (``quiet_hours``); outside its channel's ``send_window`` (SMS in China: 08:00 to
   22:00), likewise until the window opens (``send_window``);
4. **frequency caps**: across every journey, at most ``max`` sends per channel (or on
   ``any`` channel) within each cap's period: the send is deferred until a cap frees, or
   suppressed when the journey says ``on_cap: drop`` (``frequency_cap``).

Quiet hours and caps apply to channels that need consent (messages to the customer);
sends to the shop's own channels (the support team) always pass. Caps are the only
arbitration between journeys: the first send due takes the slot.

>>> from rules.policy_compiler import Cap, Policies
>>> from state.profile import Profile, Stamped
>>> policies = Policies(
...     channels={"email": (True, frozenset())}, quiet_hours=(22 * 60, 8 * 60),
...     caps=(Cap(channel="email", max=1, seconds=86400.0),))
>>> profile = Profile(key="c1", consent={"email": Stamped(True, 0.0, "e1")})
>>> gate = SendGate(policies)
>>> gate.check(profile, "email", "treatment", "defer", at=12 * 3600.0)
Verdict(status='sent', reason=None, retry_at=None, needs_consent=True)
>>> gate.check(profile, "email", "treatment", "defer", at=23 * 3600.0).reason
'quiet_hours'
>>> gate.remember(profile, "email", 12 * 3600.0)
>>> gate.check(profile, "email", "treatment", "drop", at=13 * 3600.0)[:2]
('suppressed', 'frequency_cap')
"""

from __future__ import annotations

from bisect import insort
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from rules.policy_compiler import Policies
from state.journey_runs import MAX_SENDS_KEPT
from state.profile import Profile

#: A cap on this channel counts sends on every channel.
ANY_CHANNEL = "any"


class Verdict(NamedTuple):
    """``status``: sent, deferred or suppressed; ``reason`` why not sent; ``retry_at``: when
    a deferred send is tried again; ``needs_consent``: the channel reaches the customer."""

    status: str
    reason: str | None
    retry_at: float | None
    needs_consent: bool


class SendGate:
    def __init__(self, policies: Policies) -> None:
        self.policies = policies

    def check(self, profile: Profile, channel: str, arm: str, on_cap: str, at: float) -> Verdict:
        """The verdict on a send on ``channel`` at ``at`` by a run in ``arm``."""
        needs_consent = self.policies.channels[channel][0]
        if arm == "holdout":
            return Verdict("suppressed", "holdout", None, needs_consent)
        if not needs_consent:
            return Verdict("sent", None, None, False)
        if not profile.has_consent(channel):
            return Verdict("suppressed", "no_consent", None, True)
        if not profile.reachable(channel):
            return Verdict("suppressed", "unreachable", None, True)
        quiet_end = self.quiet_until(profile, at)
        if quiet_end is not None:
            return Verdict("deferred", "quiet_hours", quiet_end, True)
        closed = self.policies.channel_quiet.get(channel)
        opens = None if closed is None else self.quiet_until(profile, at, closed)
        if opens is not None:
            return Verdict("deferred", "send_window", opens, True)
        free_at = self.cap_frees_at(profile, channel, at)
        if free_at is not None:
            if on_cap == "drop":
                return Verdict("suppressed", "frequency_cap", None, True)
            return Verdict("deferred", "frequency_cap", free_at, True)
        return Verdict("sent", None, None, True)

    def zone(self, profile: Profile) -> ZoneInfo:
        """The customer's time zone (``time_zone`` trait), else the shop's default."""
        name = profile.trait("time_zone")
        return ZoneInfo(name if isinstance(name, str) else self.policies.default_time_zone)

    def quiet_until(
        self, profile: Profile, at: float, window: tuple[int, int] | None = None
    ) -> float | None:
        """The end of the quiet window ``at`` falls in (customer's local time), else None;
        ``window`` (start and end, minutes after midnight) defaults to the quiet hours."""
        window = window or self.policies.quiet_hours
        if window is None:
            return None
        start, end = window
        local = datetime.fromtimestamp(at, UTC).astimezone(self.zone(profile))
        minute = local.hour * 60 + local.minute
        inside = start <= minute < end if start < end else minute >= start or minute < end
        if not inside:
            return None
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        ends = midnight + timedelta(minutes=end)
        if ends <= local:
            ends += timedelta(days=1)
        # Rebuild from wall time so a daylight-saving change in between is respected.
        wall = datetime(ends.year, ends.month, ends.day, end // 60, end % 60, tzinfo=local.tzinfo)
        return wall.timestamp()

    def cap_frees_at(self, profile: Profile, channel: str, at: float) -> float | None:
        """When the next send becomes possible under every cap, or None if it is now."""
        sends = profile.journeys.sends
        latest: float | None = None
        for cap in self.policies.caps:
            if cap.channel not in (channel, ANY_CHANNEL):
                continue
            times = sends.get(cap.channel if cap.channel != ANY_CHANNEL else ANY_CHANNEL, [])
            recent = [t for t in times if at - cap.seconds < t <= at]
            if len(recent) >= cap.max:
                frees = recent[-cap.max] + cap.seconds
                latest = frees if latest is None else max(latest, frees)
        return latest

    def remember(self, profile: Profile, channel: str, at: float) -> None:
        """A send on ``channel`` went out at ``at``: it counts towards the caps."""
        state = profile.journeys
        for name in (channel, ANY_CHANNEL):
            times = state.sends.setdefault(name, [])
            insort(times, at)
            horizon = at - self.policies.longest_cap_seconds
            while times and (times[0] <= horizon or len(times) > MAX_SENDS_KEPT):
                del times[0]
