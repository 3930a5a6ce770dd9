"""Delivery feedback: what became of a sent message (``message.*`` events), per channel.

A hard bounce or a spam complaint makes the channel unreachable (sends on it are then
suppressed with reason ``unreachable``, ``rules/send_gate.py``) until the customer gives
the channel's address again (``customer.updated`` with an email or phone). An unsubscribe
withdraws the channel's consent, exactly as ``consent.updated`` with ``granted: false``
does. Counters are sums and times are maxima, so arrival order does not matter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from schemas import events as ev
from state.profile import Profile, Reach, Stamped
from state.reducers.clock import newer

#: Channels whose address a trait holds: giving it again makes the channel reachable.
READDRESSED_BY: Final = {"email": ("email",), "phone": ("sms", "whatsapp")}


def _reach(profile: Profile, channel: str) -> Reach:
    reach = profile.reach.get(channel)
    if reach is None:
        reach = profile.reach[channel] = Reach()
    return reach


def _later(current: float | None, ts: float) -> float:
    return ts if current is None or ts > current else current


def _delivered(profile: Profile, event: ev.MessageDelivered, ts: float) -> None:
    reach = _reach(profile, event.properties.channel)
    reach.delivered += 1
    reach.last_delivered_at = _later(reach.last_delivered_at, ts)


def _bounced(profile: Profile, event: ev.MessageBounced, ts: float) -> None:
    reach = _reach(profile, event.properties.channel)
    if event.properties.bounce == "soft":
        reach.soft_bounces += 1
        return
    reach.hard_bounces += 1
    _unreachable(reach, ts, "hard_bounce")


def _complained(profile: Profile, event: ev.MessageComplained, ts: float) -> None:
    reach = _reach(profile, event.properties.channel)
    reach.complaints += 1
    _unreachable(reach, ts, "complaint")


def _unreachable(reach: Reach, ts: float, reason: Any) -> None:
    if reach.unreachable_at is None or ts >= reach.unreachable_at:
        reach.unreachable_at, reach.unreachable_reason = ts, reason


def _opened(profile: Profile, event: ev.MessageOpened, ts: float) -> None:
    reach = _reach(profile, event.properties.channel)
    reach.opened += 1
    reach.last_engaged_at = _later(reach.last_engaged_at, ts)


def _clicked(profile: Profile, event: ev.MessageClicked, ts: float) -> None:
    reach = _reach(profile, event.properties.channel)
    reach.clicked += 1
    reach.last_engaged_at = _later(reach.last_engaged_at, ts)


def _unsubscribed(profile: Profile, event: ev.MessageUnsubscribed, ts: float) -> None:
    channel = event.properties.channel
    if newer(profile.consent.get(channel), ts, event.event_id):
        profile.consent[channel] = Stamped(False, ts, event.event_id)


def readdressed(profile: Profile, traits: ev.Traits, ts: float) -> None:
    """An update gave an email or phone: those channels reach again."""
    for trait, channels in READDRESSED_BY.items():
        if getattr(traits, trait) is None:
            continue
        for channel in channels:  # kept even before any feedback: events come in any order
            reach = _reach(profile, channel)
            reach.readdressed_at = _later(reach.readdressed_at, ts)


REDUCERS: Final[dict[type[Any], Callable[[Profile, Any, float], None]]] = {
    ev.MessageDelivered: _delivered,
    ev.MessageBounced: _bounced,
    ev.MessageComplained: _complained,
    ev.MessageOpened: _opened,
    ev.MessageClicked: _clicked,
    ev.MessageUnsubscribed: _unsubscribed,
}
