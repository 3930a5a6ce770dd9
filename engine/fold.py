"""The fold: one event into its profile, its tags and its journeys.

``Fold.apply`` is the engine's per-event step, once the event's turn has come in event
time (``engine/ordering.py``): it finds the profile (across engines if need be,
``engine/identity.py``), skips an event the profile has applied, fires the profile's
reviews and churn check-ins that fall due before the event, applies the reducers
(``state/reducers.py``), refreshes the derived fields after an order, then shows the
event and the changes to the tags and the journeys, and re-arms the profile's timers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import msgspec

from engine.service_desk import TEXT_KINDS
from rules.actions import Action
from rules.routing import TicketRouted
from schemas import events as ev
from schemas.events import ANONYMOUS_PREFIX
from state.changes import ProfileChange
from state.dedup import event_digest, holds, remember
from state.derived import refresh_derived
from state.handoff import Forward
from state.profile import DAY, MAX_RECENT_EVENT_IDS, Profile
from state.reducers import ADDRESS_TRAITS, apply_event, keep_contact_digests, keep_contacts
from state.reducers.points import POINTS_KINDS, apply_points

if TYPE_CHECKING:
    from engine.core import Engine
    from engine.outputs import Output

#: Event kinds after which RFM, lifecycle and tier must be recomputed.
_ORDER_KINDS = frozenset((ev.OrderPlaced, ev.OrderCancelled, ev.OrderRefunded))
#: What else moves growth value, when tiers are on it.
_GROWTH_KINDS = frozenset((ev.ReviewSubmitted, ev.MemberCheckedIn))
_CONTACT_KINDS = frozenset((ev.CustomerRegistered, ev.CustomerUpdated))

_Item = TypeVar("_Item")


class Fold:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def apply(
        self,
        event: ev.Event,
        ts: float,
        late: bool = False,
        replayed: bool = False,
        position: object = None,
        linked: bool = False,
    ) -> list[Output]:
        """Fold one event into its profile, tags and journeys.

        Reviews of this profile that fall due at or before the event's time fire first, at
        their own times. ``position`` is marked done unless the event is parked.
        ``linked``: the event was parked after making its visitor link; not again.
        """
        engine = self.engine
        cls = type(event)
        outputs: list[Output] = []
        if cls is ev.ErasureRequested:
            outputs.extend(engine.retention.erase(event, ts))  # type: ignore[arg-type]
            engine.mark_done(position)
            return outputs
        target = engine.identity.profile_for(event, ts, outputs, linked)
        if type(target) is Forward:
            engine.stats.forwarded += 1
            engine.mark_done(position)
            return [target]
        profile: Profile = target  # type: ignore[assignment]
        if profile.awaiting:  # a visitor's profile is on its way: hold the event till then
            anonymous_id = event.anonymous_id
            made = anonymous_id is not None and ANONYMOUS_PREFIX + anonymous_id in profile.awaiting
            engine.identity.park(profile.key, ts, event, position, replayed, late, linked or made)
            return outputs
        engine.mark_done(position)
        digest, mark = event_digest(event.event_id), (ts, event.event_id)
        if holds(profile.recent_events, digest) or (
            replayed and profile.applied_through is not None and mark <= profile.applied_through
        ):  # applied before a restart, read again
            engine.stats.duplicates += 1
            return outputs
        profile.recent_events = remember(profile.recent_events, digest, MAX_RECENT_EVENT_IDS)
        if not late and (profile.applied_through is None or mark > profile.applied_through):
            profile.applied_through = mark
        retention = engine.retention
        if late and retention.seconds is not None:
            # Its retention counts from now, not from its own time: an event that arrives
            # after its retention ran out must not anonymise a customer active meanwhile.
            profile.retained_from = max(profile.retained_from or ts, engine.watermark)
        firing = engine.firing
        churn, churn_due = engine.churn, profile.churn.next_due_at
        if churn is not None and churn_due is not None and churn_due <= ts:
            outputs.extend(firing.fire_churn(profile, churn_due))
            churn_due = profile.churn.next_due_at
        due = profile.next_review_at
        changes = firing.catch_up(profile, ts) if due is not None and due <= ts else []
        scheduled = profile.next_review_at
        before = profile.as_of
        routed: list[TicketRouted] = []
        if cls in TEXT_KINDS:  # read the text once: sentiment, and a new ticket's routing
            event, routed = engine.desk.read(profile, event, ts)
        kpis = engine.kpis
        tally = kpis.before(profile, event, ts)
        apply_event(profile, event, ts)
        if cls is ev.TicketOpened:
            engine.desk.settle(profile, event, routed, retention.keep_text_chars)  # type: ignore[arg-type]
            outputs.extend(routed)
        if cls in _CONTACT_KINDS:
            if retention.digest is not None:
                keep_contact_digests(profile, event, ts, retention.digest)
            if retention.keeps_contacts:
                keep_contacts(profile, event, ts)
        if tally is not None:
            kpis.after(profile, event, tally)
        rules = engine.rules
        program = rules.loyalty
        if program is not None and cls in POINTS_KINDS:
            changes.extend(apply_points(profile, event, ts, program))
        tags = rules.tags
        merged = event.anonymous_id is not None and event.customer_id is not None
        if merged or (profile.as_of != before and profile.as_of // DAY != before // DAY):
            tags.prune(profile)
        cause = event.event_id
        refreshed = (
            cls in _ORDER_KINDS
            or merged
            or (cls in _GROWTH_KINDS and engine.policy.tiers.basis == "growth")
        )
        if refreshed:
            changes.extend(refresh_derived(profile, engine.policy, cause))
        if churn is not None and cls is ev.OrderPlaced:
            for item in churn.apply(profile, event, ts):
                if type(item) is ProfileChange:
                    changes.append(item)
                else:
                    outputs.append(item)
            firing.arm_churn(profile, churn_due)
        tag_changes = tags.apply(profile, event, ts, cause)
        if tag_changes:
            changes.extend(tag_changes)
        if refreshed or tag_changes or (scheduled is None and retention.seconds is not None):
            firing.arm_review(profile, scheduled)
        outputs.extend(changes)
        journeys = rules.journeys
        if journeys.journeys:
            journey_due = profile.journeys.next_due_at
            started = journeys.apply(profile, event, ts, late)
            outputs.extend(address_sends(profile, started) if retention.keeps_contacts else started)
            if changes and not late:
                journeys.on_changes(profile, changes)
            firing.arm_journeys(profile, journey_due)
        engine.store.put(profile)
        return outputs


def address_sends(profile: Profile, outputs: Sequence[_Item]) -> list[_Item]:
    """With ``privacy.keep_contacts`` on: sends on a channel with an address (email, sms,
    whatsapp) carry the customer's, when it is known."""
    addressed: list[_Item] = []
    for item in outputs:
        if isinstance(item, Action) and item.status == "sent" and item.kind == "send":
            trait = ADDRESS_TRAITS.get(item.channel or "")
            address = None if trait is None else profile.trait(trait)
            if isinstance(address, str):
                item = msgspec.structs.replace(item, address=address)
        addressed.append(item)
    return addressed
