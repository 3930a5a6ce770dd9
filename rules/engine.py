"""The engine every runner drives: events in; profile changes and journey outputs out.

``process(event)`` accepts one event; events are applied in event-time order once the
watermark (newest event time minus the allowed lateness) passes them. ``advance(now)``
applies waiting events and fires reviews (lifecycle and tier boundaries, lapsing tags)
and journey moments up to ``now``. It does no I/O and reads no clock: the same events in
give the same outputs.

>>> from state.stores import MemoryProfileStore
>>> from rules.loader import RuleSet
>>> from schemas.decode import decode_event
>>> engine = Engine(MemoryProfileStore(), RuleSet.empty(), config=EngineConfig(allowed_lateness_seconds=0))
>>> order = decode_event(b'{"type":"order.placed","event_id":"e1","customer_id":"c1",'
...     b'"occurred_at":"2026-01-05T10:00:00Z","properties":{"order_id":"o1","total":30}}')
>>> [(c.kind, c.after) for c in engine.process(order)]
[('lifecycle_changed', 'new')]
>>> [(c.kind, c.after) for c in engine.advance(order.occurred_at.timestamp() + 31 * 86400)]
[('lifecycle_changed', 'active')]
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from churn.tracker import ChurnLabel, ChurnTracker
from rules.actions import Action, JourneyOutput
from rules.coupon_pools import CouponLedger
from rules.loader import RuleSet
from schemas import events as ev
from schemas.events import ANONYMOUS_PREFIX
from state.audit import ErasureAudit, ErasureReason
from state.changes import ProfileChange
from state.dedup import SeenEvents
from state.derived import refresh_derived
from state.handoff import Forward, Handoff, HandoffRequest, Internal
from state.identity import merge_profiles
from state.kpis import KpiTally
from state.policy import ProfilePolicy
from state.profile import DAY, MAX_RECENT_EVENT_IDS, Profile
from state.reducers import (
    ADDRESS_TRAITS,
    advance_profile_clock,
    apply_event,
    contact_digest,
    keep_contact_digests,
    keep_contacts,
)
from state.stores.base import ProfileStore

#: Event kinds after which RFM, lifecycle and tier must be recomputed.
_ORDER_KINDS = frozenset((ev.OrderPlaced, ev.OrderCancelled, ev.OrderRefunded))
_KIND = {cls: tag for tag, cls in ev.EVENT_TYPES.items()}
_REVIEW, _JOURNEY, _CHURN = 0, 1, 2
log = logging.getLogger("rapport.engine")

#: What the engine puts out: profile changes, journey actions and run milestones, churn
#: labels for the learner, and the records engines of other partitions must see
#: (``state/handoff.py``).
Output = ProfileChange | JourneyOutput | ChurnLabel | ErasureAudit | Internal
#: What the journey runtime puts out.
_JourneyOut = JourneyOutput | ProfileChange
#: Sorts a handoff request after the events of the same moment.
_AFTER = "\uffff"


@dataclass
class EngineStats:
    """Counters the edge turns into metrics and summaries."""

    processed: int = 0
    duplicates: int = 0
    late: int = 0
    merges: int = 0
    erasures: int = 0
    #: Profiles anonymised after ``privacy.retention_days`` without an event.
    anonymised: int = 0
    reviews: int = 0
    #: Events whose application raised (set aside as failed, see ``drain_failed``), and
    #: timers whose firing raised (skipped).
    failed_events: int = 0
    failed_timers: int = 0
    #: Identity across partitions: profiles asked for, handed over, taken in, dropped,
    #: and events sent on to the partition that homes their profile.
    handoffs_requested: int = 0
    handoffs_answered: int = 0
    handoffs_taken: int = 0
    handoffs_dropped: int = 0
    forwarded: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineConfig:
    #: Events older than the newest event time minus this are counted as late.
    allowed_lateness_seconds: float = 3600.0
    dedup_max_entries: int = 1_000_000
    dedup_window_seconds: float = 86_400.0


class Engine:
    def __init__(
        self,
        store: ProfileStore,
        rules: RuleSet,
        policy: ProfilePolicy | None = None,
        config: EngineConfig | None = None,
        home: Callable[[str], bool] | None = None,
        churn: ChurnTracker | None = None,
    ) -> None:
        """``home`` says whether a profile key is kept by this engine; None (replay) means
        every key is. With it, profiles homed elsewhere are reached through the records in
        ``state/handoff.py``, which the caller carries to the other engines.

        ``churn`` takes churn snapshots at orders and check-ins and puts out their labels
        (``churn/tracker.py``); None: no churn scoring."""
        self.store = store
        self._home = home
        self.churn = churn
        self.rules = rules
        self.policy = policy or ProfilePolicy()
        self.config = config or EngineConfig()
        self.stats = EngineStats()
        #: Business KPI flows: funnel, orders, tickets, SLA, ratings (``state/kpis.py``).
        self.kpis = KpiTally(self.policy.support)
        #: Pool coupon codes handed out; kept across rule reloads.
        self.coupons = CouponLedger()
        self._seen = SeenEvents(self.config.dedup_max_entries, self.config.dedup_window_seconds)
        #: (due, _REVIEW or _JOURNEY, profile key): profile reviews and journey moments.
        self._timers: list[tuple[float, int, str]] = []
        #: Events (and handoff requests) waiting for the watermark, by (event time, event id).
        self._pending: list[
            tuple[float, str, int, ev.Event | HandoffRequest | Forward, object, bool]
        ] = []
        self._sequence = itertools.count()
        #: Profile key -> its events held until an awaited visitor profile arrives:
        #: (event time, event, position, replayed, late, linked), in the order they were due;
        #: ``linked``: the event's own link was made (the customer waits because of it).
        self._parked: dict[str, list[tuple[float, ev.Event, object, bool, bool, bool]]] = {}
        #: (customer key, anonymous key) -> a handoff that came before its request was made
        #: again (the identifying event read again after a restart), and its position.
        self._early: dict[tuple[str, str], tuple[Handoff, object]] = {}
        #: Positions of events applied or dropped since the last ``drain_done``.
        self._done: list[object] = []
        self._newest = float("-inf")
        #: The latest moment ``advance`` was moved to; events before it are late.
        self._advanced = float("-inf")
        self._lateness = self.config.allowed_lateness_seconds
        #: Events whose application raised, with the error, since the last ``drain_failed``.
        self._failed: list[tuple[ev.Event, str]] = []
        #: Profiles are anonymised after this long without an event (None: never).
        self._retention = self.policy.privacy.retention_seconds
        self._keeps_contacts = self.policy.privacy.keep_contacts
        key = self.policy.privacy.key()
        self._digest = (
            None if key is None else contact_digest(key, self.policy.privacy.contact_key_id)
        )

    @property
    def watermark(self) -> float:
        """Event time up to which everything has fired: the newest event time minus the
        allowed lateness, or a later moment ``advance`` was moved to (a wall-clock tick)."""
        return max(self._newest - self.config.allowed_lateness_seconds, self._advanced)

    @property
    def newest_event_time(self) -> float:
        return self._newest

    def swap_rules(self, rules: RuleSet) -> None:
        """Use a new, already validated rule set from the next event on."""
        self.rules = rules

    # --- events -------------------------------------------------------------------------------

    def process(
        self, event: ev.Event, position: object = None, replayed: bool = False
    ) -> list[Output]:
        """Accept one event; return what became due (profile changes, journey outputs).

        Events are applied in event-time order: an event waits until the watermark (the
        newest event time minus the allowed lateness) passes it, so any event that arrives
        up to the allowed lateness out of order is still applied in its place. An event
        older than the watermark is late: it is applied at once and starts no journey.

        ``position`` is the caller's token for where the event came from (a Kafka offset);
        ``drain_done`` hands it back once the event is applied or dropped as a duplicate.
        ``replayed`` says the event was read before a restart and may already be in the
        stored profiles; it is then skipped if its profile has applied it.
        """
        ts = event.occurred_at.timestamp()
        stats = self.stats
        if self._seen.check_and_add(event.event_id, ts):
            stats.duplicates += 1
            if position is not None:
                self._done.append(position)
            return []
        stats.processed += 1
        by_type, kind = stats.by_type, _KIND[type(event)]
        by_type[kind] = by_type.get(kind, 0) + 1
        if ts > self._newest:
            self._newest = ts
        watermark = self._newest - self._lateness
        if watermark < self._advanced:
            watermark = self._advanced
        outputs: list[Output] = []
        if self._home is not None and event.anonymous_id is not None:
            self._ask_for_visitor(event, ts, outputs)
        if ts < watermark:
            stats.late += 1
            outputs.extend(self._apply_guarded(event, ts, True, replayed, position))
        else:
            item = (ts, event.event_id, next(self._sequence), event, position, replayed)
            heapq.heappush(self._pending, item)
        outputs.extend(self.advance(watermark))
        return outputs

    def drain_done(self) -> list[object]:
        """Positions of the events applied (or dropped) since the last call, in that order.

        A worker commits an input offset only once its event is done, so an event still
        waiting for the watermark is read again after a crash rather than lost.
        """
        done, self._done = self._done, []
        return done

    @property
    def clock(self) -> tuple[float, float]:
        """(newest event time, latest moment advanced to): what ``restore_clock`` takes back."""
        return self._newest, self._advanced

    def restore_clock(self, newest: float, advanced: float) -> None:
        """Start from a clock saved before a restart, so events read again are judged late or
        not as they were the first time."""
        self._newest = max(self._newest, newest)
        self._advanced = max(self._advanced, advanced)

    def resume(self) -> None:
        """Queue the timers of every stored profile: after the store was filled from elsewhere
        (a worker recovering a partition), reviews and journey moments fire as before."""
        store = self.store
        for key in store.sorted_keys():
            profile = store.get(key)
            if profile is None:
                continue
            retire = self._retention_due(profile)
            if retire is not None and (
                profile.next_review_at is None or retire < profile.next_review_at
            ):
                profile.next_review_at = retire  # retention turned on, or shortened, since
            if profile.next_review_at is not None:
                heapq.heappush(self._timers, (profile.next_review_at, _REVIEW, key))
            if profile.journeys.next_due_at is not None:
                heapq.heappush(self._timers, (profile.journeys.next_due_at, _JOURNEY, key))
            if profile.churn.next_due_at is not None and self.churn is not None:
                heapq.heappush(self._timers, (profile.churn.next_due_at, _CHURN, key))

    @property
    def pending_events(self) -> int:
        """Events accepted but not yet applied (waiting for the watermark)."""
        return len(self._pending)

    def _apply(
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
        cls = type(event)
        outputs: list[Output] = []
        if cls is ev.ErasureRequested:
            outputs.extend(self._erase(event, ts))  # type: ignore[arg-type]
            self._mark_done(position)
            return outputs
        target = self._profile_for(event, ts, outputs, linked)
        if type(target) is Forward:
            self.stats.forwarded += 1
            self._mark_done(position)
            return [target]
        profile: Profile = target  # type: ignore[assignment]
        if profile.awaiting:  # a visitor's profile is on its way: hold the event till then
            anonymous_id = event.anonymous_id
            made = anonymous_id is not None and ANONYMOUS_PREFIX + anonymous_id in profile.awaiting
            self._parked.setdefault(profile.key, []).append(
                (ts, event, position, replayed, late, linked or made)
            )
            return outputs
        self._mark_done(position)
        recent, mark = profile.recent_event_ids, (ts, event.event_id)
        if event.event_id in recent or (
            replayed and profile.applied_through is not None and mark <= profile.applied_through
        ):  # applied before a restart, read again
            self.stats.duplicates += 1
            return outputs
        recent.append(event.event_id)
        if len(recent) > MAX_RECENT_EVENT_IDS:
            del recent[0]
        if not late and (profile.applied_through is None or mark > profile.applied_through):
            profile.applied_through = mark
        if late and self._retention is not None:
            # Its retention counts from now, not from its own time: an event that arrives
            # after its retention ran out must not anonymise a customer active meanwhile.
            profile.retained_from = max(profile.retained_from or ts, self.watermark)
        churn, churn_due = self.churn, profile.churn.next_due_at
        if churn is not None and churn_due is not None and churn_due <= ts:
            outputs.extend(self._fire_churn(profile, churn_due))
            churn_due = profile.churn.next_due_at
        due = profile.next_review_at
        changes = self._catch_up(profile, ts) if due is not None and due <= ts else []
        scheduled = profile.next_review_at
        before = profile.as_of
        kpis = self.kpis
        mark = kpis.before(profile, event, ts)
        apply_event(profile, event, ts)
        if cls is ev.CustomerRegistered or cls is ev.CustomerUpdated:
            if self._digest is not None:
                keep_contact_digests(profile, event, ts, self._digest)
            if self._keeps_contacts:
                keep_contacts(profile, event, ts)
        if mark is not None:
            kpis.after(profile, event, mark)
        tags = self.rules.tags
        merged = event.anonymous_id is not None and event.customer_id is not None
        if merged or (profile.as_of != before and profile.as_of // DAY != before // DAY):
            tags.prune(profile)
        cause = event.event_id
        refreshed = cls in _ORDER_KINDS or merged
        if refreshed:
            changes.extend(refresh_derived(profile, self.policy, cause))
        if churn is not None and cls is ev.OrderPlaced:
            for item in churn.on_order(profile, ts, cause):
                if isinstance(item, ProfileChange):
                    changes.append(item)
                else:
                    outputs.append(item)
            self._schedule_churn(profile, churn_due)
        tag_changes = tags.on_event(profile, event, ts, cause)
        if tag_changes:
            changes.extend(tag_changes)
        if refreshed or tag_changes or (scheduled is None and self._retention is not None):
            self._schedule(profile, scheduled)
        outputs.extend(changes)
        journeys = self.rules.journeys
        if journeys.journeys:
            journey_due = profile.journeys.next_due_at
            outputs.extend(self._addressed(profile, journeys.on_event(profile, event, ts, late)))
            if changes and not late:
                journeys.on_changes(profile, changes)
            self._schedule_journeys(profile, journey_due)
        self.store.put(profile)
        return outputs

    def _catch_up(self, profile: Profile, ts: float) -> list[ProfileChange]:
        """Fire this profile's reviews due at or before ``ts``, oldest first."""
        changes: list[ProfileChange] = []
        while (due := profile.next_review_at) is not None and due <= ts:
            self.stats.reviews += 1
            changes.extend(self.review(profile, due))
            if profile.next_review_at is not None and profile.next_review_at <= due:
                raise AssertionError(f"review of {profile.key} at {due} did not move forward")
        return changes

    def _profile_for(
        self, event: ev.Event, ts: float, outputs: list[Output], linked: bool = False
    ) -> Profile | Forward:
        """The profile ``event`` updates, or a ``Forward`` when another engine homes it."""
        store, home = self.store, self._home
        customer_id, anonymous_id = event.customer_id, event.anonymous_id
        if customer_id is not None:
            if home is not None and not home(customer_id):
                return Forward(to=customer_id, event=event)
            if anonymous_id is not None and not linked:
                anonymous_key = ANONYMOUS_PREFIX + anonymous_id
                if store.resolve(anonymous_key) != customer_id:
                    return self._identify(anonymous_key, customer_id, event, ts, outputs)
        key = store.resolve(event.profile_key)
        if home is not None and key != customer_id and not home(key):
            return Forward(to=key, event=event)
        profile = self._live(key, ts, outputs)
        if profile is None:
            profile = Profile(key=key, customer_id=customer_id if key == customer_id else None)
        return profile

    def _identify(
        self,
        anonymous_key: str,
        customer_key: str,
        event: ev.Event,
        ts: float,
        outputs: list[Output],
    ) -> Profile:
        """Link a visitor to a customer, folding the visitor's profile into the customer's.

        A visitor homed on another engine is asked for (``HandoffRequest``); the customer
        then waits for it, its events held, unless it came already.
        """
        store = self.store
        customer = self._live(customer_key, ts, outputs) or Profile(
            key=customer_key, customer_id=customer_key
        )
        visitor = self._live(anonymous_key, ts, outputs)
        if visitor is not None:
            self._fold_in(customer, visitor)
            store.delete(anonymous_key)
        store.link(anonymous_key, customer_key)
        home = self._home
        if home is not None and not home(anonymous_key):
            # Asked for when the event was read (``_ask_for_visitor``): here already, or
            # the customer waits for it.
            early = self._early.pop((customer_key, anonymous_key), None)
            if early is not None:
                self._merge_handoff(customer, early[0])
                self._mark_done(early[1])
            else:
                customer.awaiting.append(anonymous_key)
        store.put(customer)
        return customer

    def _ask_for_visitor(self, event: ev.Event, ts: float, outputs: list[Output]) -> None:
        """An event linking a visitor homed elsewhere to a customer homed here is read: ask
        the visitor's home for its profile now, so that it is sent as of the event's time
        (that engine holds the request until then) and is here when the event is applied."""
        customer_id, home = event.customer_id, self._home
        if customer_id is None or home is None or not home(customer_id):
            return
        anonymous_key = ANONYMOUS_PREFIX + str(event.anonymous_id)
        if home(anonymous_key) or self.store.resolve(anonymous_key) == customer_id:
            return
        self.stats.handoffs_requested += 1
        outputs.append(
            HandoffRequest(
                anonymous_key=anonymous_key,
                customer_key=customer_id,
                at=ts,
                cause=event.event_id,
            )
        )

    def _erase(self, event: ev.ErasureRequested, ts: float) -> list[Output]:
        key = self.store.resolve(event.profile_key)
        home = self._home
        if home is not None and not home(key):
            self.stats.forwarded += 1
            return [Forward(to=key, event=event)]
        return self._remove(key, ts, event.event_id, "request", event)

    def _remove(
        self,
        key: str,
        at: float,
        cause: str,
        reason: ErasureReason,
        request: ev.ErasureRequested | None = None,
    ) -> list[Output]:
        """Remove a profile and everything this engine keeps under its key or its visitors'
        keys: the profile (its journey runs and churn snapshots with it), identity links,
        held events and handoffs, and queued timers. Returns a ``profile_erased`` change for
        the customer and each of its visitor keys (for systems downstream that must forget
        them too: changes and actions were keyed by them) and the audit record.
        Visitors homed on other engines are told to forget the customer (``Forward``)."""
        store, home = self.store, self._home
        profile = store.get(key)
        store.delete(key)
        store.unlink_all(key)
        held = self._parked.pop(key, [])
        for _, _, position, *_ in held:
            self._mark_done(position)  # erased along with the profile they would have changed
        for pair in [pair for pair in self._early if pair[0] == key]:
            self.stats.handoffs_dropped += 1
            self._mark_done(self._early.pop(pair)[1])
        outputs: list[Output] = []
        keys = {key}
        if profile is not None:
            visitors = [ANONYMOUS_PREFIX + anonymous_id for anonymous_id in profile.anonymous_ids]
            for anonymous_key in visitors + [k for k in profile.awaiting if k not in visitors]:
                keys.add(anonymous_key)
                store.delete(anonymous_key)
                if request is not None and home is not None and not home(anonymous_key):
                    # The visitor's home still links it to this customer: have it forget that.
                    outputs.append(Forward(to=anonymous_key, event=request))
        timers = len(self._timers)
        self._timers = [timer for timer in self._timers if timer[2] not in keys]
        heapq.heapify(self._timers)
        if profile is not None:
            if reason == "request":  # an anonymisation is counted once, as such (_retire)
                self.stats.erasures += 1
            for erased in [key, *sorted(keys - {key})]:
                outputs.append(ProfileChange.make("profile_erased", erased, None, None, at, cause))
        outputs.append(
            ErasureAudit.make(
                reason,
                cause,
                at,
                profiles=0 if profile is None else 1,
                visitors=len(keys) - 1,
                journey_runs=0 if profile is None else len(profile.journeys.runs),
                churn_snapshots=0 if profile is None else len(profile.churn.pending),
                timers=timers - len(self._timers),
                held_events=len(held),
            )
        )
        return outputs

    def _live(self, key: str, ts: float, outputs: list[Output]) -> Profile | None:
        """The stored profile ``key``, unless its retention period ended before ``ts``: an
        event for a profile whose timer has not fired yet. It is anonymised first (as the
        timer would have done), and the event starts a new profile."""
        profile = self.store.get(key)
        if profile is None or self._retention is None:
            return profile
        retire = self._retention_due(profile)
        if retire is None or retire > ts:
            return profile
        outputs.extend(self._retire(profile, retire))
        return None

    def _retention_due(self, profile: Profile) -> float | None:
        """When ``profile`` is anonymised for lack of activity; None: never. Activity is
        its newest event, or the arrival of a late one (``Profile.retained_from``)."""
        keep, last = self._retention, profile.last_seen_at
        if keep is None or last is None:
            return None
        kept = profile.retained_from
        return (last if kept is None or kept < last else kept) + keep

    def _retire(self, profile: Profile, at: float) -> list[Output]:
        """Anonymise a profile inactive for the retention period, as of that moment."""
        self.stats.anonymised += 1
        return self._remove(profile.key, at, f"retention@{at:.0f}", "retention")

    # --- identity across engines (state/handoff.py) -------------------------------------------

    def receive(self, record: Internal, position: object = None) -> list[Output]:
        """Take a record another engine sent this one; return what became due."""
        if type(record) is Forward:
            event = record.event
            if type(event) is not ev.ErasureRequested or not record.to.startswith(ANONYMOUS_PREFIX):
                return self.process(event, position)
            at, order = event.occurred_at.timestamp(), event.event_id
        elif type(record) is HandoffRequest:
            at, order = record.at, _AFTER + record.cause
        else:
            return self._take_handoff(record, position)  # type: ignore[arg-type]
        # A request, or a visitor to forget: in event-time order with the visitor's events.
        if at < self.watermark:
            self._mark_done(position)
            return self._internal_due(record)
        heapq.heappush(self._pending, (at, order, next(self._sequence), record, position, False))
        return []

    def _internal_due(self, record: HandoffRequest | Forward) -> list[Output]:
        if type(record) is HandoffRequest:
            return self._hand_over(record)
        self._forget_visitor(record.to)  # type: ignore[union-attr]
        return []

    def _hand_over(self, request: HandoffRequest) -> list[Output]:
        """The visitor's side: give up its profile and route it to the customer from now on."""
        store = self.store
        visitor = store.get(request.anonymous_key)
        store.delete(request.anonymous_key)
        store.link(request.anonymous_key, request.customer_key)
        self.stats.handoffs_answered += 1
        return [
            Handoff(
                anonymous_key=request.anonymous_key,
                customer_key=request.customer_key,
                at=request.at,
                cause=request.cause,
                profile=visitor,
            )
        ]

    def _take_handoff(self, handoff: Handoff, position: object) -> list[Output]:
        """The customer's side: merge the visitor, then apply the events held for it."""
        customer = self.store.get(handoff.customer_key)
        anonymous_key = handoff.anonymous_key
        if customer is not None and anonymous_key in customer.awaiting:
            self._merge_handoff(customer, handoff)
            self._mark_done(position)
            return self._unpark(customer) if not customer.awaiting else []
        anonymous_id = anonymous_key.removeprefix(ANONYMOUS_PREFIX)
        if customer is not None and anonymous_id in customer.anonymous_ids:
            self._mark_done(position)  # linked before: an answer read again after a restart
            return []
        # Here before the identifying event is applied (it waits for the watermark, or is
        # read again after a restart): kept for then (``_identify``), or until that moment
        # is well past (``_expire_early``).
        self._early[(handoff.customer_key, anonymous_key)] = (handoff, position)
        return []

    def _fold_in(self, customer: Profile, visitor: Profile) -> None:
        """Merge a visitor's profile into the customer's; the visitor's runs go on there."""
        merge_profiles(customer, visitor)
        self.stats.merges += 1
        self._schedule_journeys(customer, None)

    def _merge_handoff(self, customer: Profile, handoff: Handoff) -> None:
        if handoff.anonymous_key in customer.awaiting:
            customer.awaiting.remove(handoff.anonymous_key)
        if handoff.profile is not None:
            self._fold_in(customer, handoff.profile)
        self.stats.handoffs_taken += 1
        self.store.put(customer)

    def _unpark(self, profile: Profile) -> list[Output]:
        """Apply the events held for ``profile``, with its own timers between them, in order."""
        outputs: list[Output] = []
        key = profile.key
        for ts, event, position, replayed, late, linked in self._parked.pop(key, []):
            current = self.store.get(key)
            if current is not None and not current.awaiting:
                self._fire_before(current, ts, outputs)
            outputs.extend(self._apply_guarded(event, ts, late, replayed, position, linked))
        current = self.store.get(key)
        if current is not None and not current.awaiting:
            self._schedule(current)  # timers skipped while it waited
            self._schedule_journeys(current, None)
            outputs.extend(self.advance(self.watermark))
        return outputs

    def _fire_before(self, profile: Profile, ts: float, outputs: list[Output]) -> None:
        """Fire the profile's reviews and journey moments due before ``ts``, oldest first."""
        while True:
            review, moment = profile.next_review_at, profile.journeys.next_due_at
            if review is not None and review < ts and (moment is None or review <= moment):
                outputs.extend(self._review_due(profile, review))
                if self.store.get(profile.key) is None:
                    return  # anonymised
            elif moment is not None and moment < ts:
                outputs.extend(self._fire_journeys(profile, moment))
            else:
                return

    def _forget_visitor(self, anonymous_key: str) -> None:
        """The customer a visitor was linked to is erased: drop the link and the visitor."""
        store = self.store
        store.delete(anonymous_key)
        customer_key = store.resolve(anonymous_key)
        if customer_key != anonymous_key and store.get(customer_key) is None:
            store.unlink_all(customer_key)

    def _expire_early(self) -> None:
        """Drop handoffs kept for a request that did not come within the allowed lateness."""
        horizon = self.watermark - self._lateness
        for pair, (handoff, position) in list(self._early.items()):
            if handoff.at < horizon:
                del self._early[pair]
                self.stats.handoffs_dropped += 1
                self._mark_done(position)

    @property
    def parked_events(self) -> int:
        """Events held for profiles waiting for a visitor's profile from another engine."""
        return sum(len(held) for held in self._parked.values())

    def _mark_done(self, position: object) -> None:
        if position is not None:
            self._done.append(position)

    # --- time ---------------------------------------------------------------------------------

    def _schedule(self, profile: Profile, already_scheduled: float | None = None) -> None:
        """Queue the profile's next review unless that exact time is queued already.

        The next review is the earliest of the derived fields' next boundary (set by
        ``refresh_derived``), the first lapse of a tag and the end of the retention period.
        A tag's lapse is computed when the tag is added and at each review, the retention's
        end when the profile is first scheduled and at each review; later activity only
        pushes either further out, so a timer may fire early, finds nothing to change and
        re-arms.
        """
        lapse = self.rules.tags.next_review(profile)
        due = profile.next_review_at
        if lapse is not None and (due is None or lapse < due):
            due = lapse
        retire = self._retention_due(profile)
        if retire is not None and (due is None or retire < due):
            due = retire
        profile.next_review_at = due
        if due is not None and due != already_scheduled:
            heapq.heappush(self._timers, (due, _REVIEW, profile.key))

    def _schedule_churn(self, profile: Profile, already_scheduled: float | None) -> None:
        due = profile.churn.next_due_at
        if due is not None and due != already_scheduled:
            heapq.heappush(self._timers, (due, _CHURN, profile.key))

    def _fire_churn(self, profile: Profile, due: float) -> list[Output]:
        """Labels and a check-in of ``profile`` due at ``due``; journeys see risk changes."""
        assert self.churn is not None
        fired = self.churn.due(profile, due)
        self._schedule_churn(profile, None)
        self._journeys_see([item for item in fired if isinstance(item, ProfileChange)], profile)
        return list(fired)

    def _journeys_see(self, changes: list[ProfileChange], profile: Profile) -> None:
        """Start the runs the churn model's profile changes trigger (a band move)."""
        journeys = self.rules.journeys
        if changes and journeys.journeys:
            journey_due = profile.journeys.next_due_at
            journeys.on_changes(profile, changes)
            self._schedule_journeys(profile, journey_due)

    def _rescore(self, profile: Profile, at: float) -> list[Output]:
        """Score ``profile`` as of ``at`` (no snapshot); journeys see a band change."""
        assert self.churn is not None
        churn_due = profile.churn.next_due_at
        fired = self.churn.rescore(profile, at)
        changes = [item for item in fired if isinstance(item, ProfileChange)]
        self._schedule_churn(profile, churn_due)
        self._journeys_see(changes, profile)
        self.store.put(profile)
        return list(changes)

    def _schedule_journeys(self, profile: Profile, already_scheduled: float | None) -> None:
        due = profile.journeys.next_due_at
        if due is not None and due != already_scheduled:
            heapq.heappush(self._timers, (due, _JOURNEY, profile.key))

    def advance(self, now: float) -> list[Output]:
        """Apply waiting events and fire reviews and journey moments up to ``now``, in time order.

        At equal times an event goes before a timer: an order placed at the very moment a
        reminder falls due cancels it.
        """
        outputs: list[Output] = []
        if now > self._advanced:
            self._advanced = now
        timers, pending, store = self._timers, self._pending, self.store
        while True:
            event_at = pending[0][0] if pending else None
            timer_at = timers[0][0] if timers else None
            if (
                event_at is not None
                and event_at <= now
                and (timer_at is None or event_at <= timer_at)
            ):
                ts, _, _, item, position, replayed = heapq.heappop(pending)
                if type(item) is HandoffRequest or type(item) is Forward:
                    self._mark_done(position)
                    outputs.extend(self._internal_due(item))
                else:
                    outputs.extend(self._apply_guarded(item, ts, False, replayed, position))  # type: ignore[arg-type]
                continue
            if timer_at is None or timer_at > now:
                if self._early:
                    self._expire_early()
                return outputs
            due, kind, key = heapq.heappop(timers)
            profile = store.get(key)
            if profile is None:
                continue  # merged away or erased
            if profile.awaiting:
                continue  # queued again when the visitor's profile arrives
            try:
                outputs.extend(self._fire(profile, due, kind))
            except Exception:  # a bug: this timer is skipped, the others still fire
                self.stats.failed_timers += 1
                log.exception("timer %d at %.0f of one profile failed; skipped", kind, due)

    def _fire(self, profile: Profile, due: float, kind: int) -> list[Output]:
        if kind == _REVIEW:
            if profile.next_review_at != due:
                return []  # superseded by a later event
            return self._review_due(profile, due)
        if kind == _JOURNEY:
            if profile.journeys.next_due_at == due:
                return self._fire_journeys(profile, due)
            return []
        if profile.churn.next_due_at == due and self.churn is not None:
            fired = self._fire_churn(profile, due)
            self.store.put(profile)
            return fired
        return []

    def _apply_guarded(
        self,
        event: ev.Event,
        ts: float,
        late: bool,
        replayed: bool,
        position: object,
        linked: bool = False,
    ) -> list[Output]:
        """``_apply``, with an event that raises set aside instead of stopping the engine.

        Such an event is a bug's trigger, not bad input (that is refused when decoded):
        the caller dead-letters it (``drain_failed``) with the error, and the events after
        it are applied. Its profile keeps what the event changed before the error."""
        marked = len(self._done)
        try:
            return self._apply(event, ts, late, replayed, position, linked)
        except Exception as error:
            self.stats.failed_events += 1
            self._failed.append((event, f"{type(error).__name__}: {error}"))
            if position is not None and position not in self._done[marked:]:
                self._mark_done(position)
            log.exception("applying event %s failed; dead-lettered", event.event_id)
            return []

    def drain_failed(self) -> list[tuple[ev.Event, str]]:
        """Events whose application raised since the last call, with the error."""
        failed, self._failed = self._failed, []
        return failed

    def _fire_journeys(self, profile: Profile, now: float) -> list[Output]:
        """Move the profile's runs up to ``now``; tags they set may start further runs."""
        journeys = self.rules.journeys
        outputs: list[Output] = []
        for _ in range(16):  # a journey tag starting a journey that tags...: bounded
            fired = self._addressed(profile, journeys.fire(profile, now, self.coupons))
            outputs.extend(fired)
            changes = [item for item in fired if isinstance(item, ProfileChange)]
            if not changes:
                break
            journeys.on_changes(profile, changes)
            due = profile.journeys.next_due_at
            if due is None or due > now:
                break
        due = profile.journeys.next_due_at
        if due is not None and due <= now:
            raise AssertionError(f"journeys of {profile.key} still due at {due} after firing")
        self._schedule_journeys(profile, None)
        self.store.put(profile)
        return outputs

    def _addressed(self, profile: Profile, outputs: list[_JourneyOut]) -> list[_JourneyOut]:
        """With ``privacy.keep_contacts`` on: sends on a channel with an address (email,
        sms, whatsapp) carry the customer's, when it is known."""
        if not self._keeps_contacts:
            return outputs
        addressed: list[_JourneyOut] = []
        for item in outputs:
            if type(item) is Action and item.status == "sent" and item.kind == "send":
                trait = ADDRESS_TRAITS.get(item.channel or "")
                address = None if trait is None else profile.trait(trait)
                if isinstance(address, str):
                    item = msgspec.structs.replace(item, address=address)
            addressed.append(item)
        return addressed

    def coupon_pools(self) -> dict[str, tuple[int, int]]:
        """Pool name -> (codes left, codes in the pool), for the current rules."""
        pools = self.rules.journeys.policies.coupon_pools
        return {
            name: (self.coupons.remaining(name, codes), len(codes))
            for name, codes in sorted(pools.items())
        }

    def _review_due(self, profile: Profile, at: float, count: bool = True) -> list[Output]:
        """A review falls due: anonymise the profile if its retention period is over by
        then, else bring it up to ``at``."""
        retire = self._retention_due(profile)
        if retire is not None and retire <= at:
            return self._retire(profile, retire)
        if count:
            self.stats.reviews += 1
        return list(self.review(profile, at))

    def review(self, profile: Profile, at: float) -> list[ProfileChange]:
        """Bring one profile's derived fields and tags up to ``at``."""
        cause = f"review@{at:.0f}"
        advance_profile_clock(profile, at)
        changes = refresh_derived(profile, self.policy, cause)
        changes.extend(self.rules.tags.review(profile, cause))
        self._schedule(profile)
        journeys = self.rules.journeys
        if changes and journeys.journeys:
            journey_due = profile.journeys.next_due_at
            journeys.on_changes(profile, changes)
            self._schedule_journeys(profile, journey_due)
        self.store.put(profile)
        return changes

    def finish(self, at: float) -> list[Output]:
        """End of input: fire every review up to ``at``, then bring every profile to ``at``.

        Afterwards each profile's derived fields, windows and tags are as of the same
        moment, so snapshots compare across customers and do not depend on arrival order.
        """
        outputs = self.advance(at)
        store = self.store
        for key in list(store.sorted_keys()):
            profile = store.get(key)
            if profile is not None:
                outputs.extend(self._review_due(profile, max(at, profile.as_of), count=False))
        if self.churn is not None:  # every risk as of the end, not of its last snapshot
            for key in list(store.sorted_keys()):
                profile = store.get(key)
                if profile is not None and profile.customer_id is not None:
                    outputs.extend(self._rescore(profile, max(at, profile.as_of)))
        outputs.extend(self.advance(at))
        return outputs

    def pending_reviews(self) -> int:
        return len(self._timers)
