"""Reducers: how each event kind changes a profile.

``apply_event(profile, event)`` is deterministic and does no I/O: it reads nothing but
its arguments. It updates the profile in place and returns it (copying a profile per
event would cost more than the rest of the pipeline). Every update is commutative
where the business meaning allows it: sums, minimums, maximums, keyed records and
last-writer-wins by event time, so arrival order does not change the result.

One module per part of the profile, each with the reducers of its event kinds
(``REDUCERS``): ``browse`` (views, searches), ``commerce`` (carts, orders), ``support``
(tickets, ratings, reviews), ``account`` (traits, consent, identity, contacts),
``messages`` (delivery feedback: reach and engagement per channel); and the
shared ``clock`` (the profile's clock and windows) and ``bounds`` (eviction rules). A new
event kind is one model (``schemas/events.py``) and one reducer in the table of its module.

>>> from schemas.events import OrderPlaced
>>> import msgspec
>>> order = msgspec.convert({"type": "order.placed", "event_id": "e1", "customer_id": "c1",
...     "occurred_at": "2026-03-01T10:00:00Z",
...     "properties": {"order_id": "o1", "total": 42.5}}, OrderPlaced)
>>> profile = apply_event(Profile(key="c1"), order)
>>> profile.orders.count, profile.orders.revenue
(1, 42.5)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from schemas import events as ev
from state.profile import Profile
from state.reducers import account, browse, commerce, messages, support
from state.reducers.account import (
    ADDRESS_TRAITS,
    ContactDigest,
    contact_digest,
    keep_contact_digests,
    keep_contacts,
    remember_anonymous_id,
)
from state.reducers.bounds import enforce_category_bound, enforce_order_bound, enforce_ticket_bound
from state.reducers.clock import (
    add_buckets,
    advance_profile_clock,
    cents,
    count_on,
    drop_days_before,
    newer,
    prune_windows,
)
from state.reducers.commerce import close_cart, enforce_cart_bound
from state.reducers.support import DETRACTOR_MAX, PROMOTER_MIN

# --- common -----------------------------------------------------------------------------------


_KIND: Final = {cls: tag for tag, cls in ev.EVENT_TYPES.items()}
_NEVER: Final = float("-inf")
#: What happened to a message is not the customer's activity: a newsletter delivered to
#: a dormant customer must not hold off their win-back or their anonymisation. (It starts
#: the clock of a profile that has nothing else, so retention still ends it.)
_NOT_ACTIVITY: Final = frozenset(messages.REDUCERS)


def _touch(profile: Profile, event: ev.Event, ts: float) -> None:
    kind = _KIND[type(event)]
    counts = profile.event_counts
    counts[kind] = counts.get(kind, 0) + 1
    last_at = profile.last_event_at
    if ts > last_at.get(kind, _NEVER):
        last_at[kind] = ts
    if type(event) not in _NOT_ACTIVITY or profile.last_seen_at is None:
        first = profile.first_seen_at
        if first is None or ts < first:
            profile.first_seen_at = ts
        last = profile.last_seen_at
        if last is None or ts > last:
            profile.last_seen_at = ts
    if profile.customer_id is None and event.customer_id is not None:
        profile.customer_id = event.customer_id
    if ts > profile.as_of:
        advance_profile_clock(profile, ts)


_REDUCERS: Final[dict[type[Any], Callable[[Profile, Any, float], None]]] = {
    **browse.REDUCERS,
    **commerce.REDUCERS,
    **support.REDUCERS,
    **account.REDUCERS,
    **messages.REDUCERS,
}
assert set(_REDUCERS) == set(ev.EVENT_CLASSES), "every event kind needs a reducer"


def apply_event(profile: Profile, event: ev.Event, ts: float | None = None) -> Profile:
    """Fold one event into the profile. ``ts`` is ``event.occurred_at`` as epoch seconds."""
    if ts is None:
        ts = event.occurred_at.timestamp()
    _touch(profile, event, ts)
    _REDUCERS[type(event)](profile, event, ts)
    return profile


__all__ = [
    "ADDRESS_TRAITS",
    "DETRACTOR_MAX",
    "PROMOTER_MIN",
    "ContactDigest",
    "add_buckets",
    "advance_profile_clock",
    "apply_event",
    "cents",
    "close_cart",
    "contact_digest",
    "count_on",
    "drop_days_before",
    "enforce_cart_bound",
    "enforce_category_bound",
    "enforce_order_bound",
    "enforce_ticket_bound",
    "keep_contact_digests",
    "keep_contacts",
    "newer",
    "prune_windows",
    "remember_anonymous_id",
]
