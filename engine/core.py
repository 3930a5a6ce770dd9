"""The engine every runner drives: events in; profile changes and journey outputs out.

``apply(event)`` accepts one event; events are applied in event-time order once the
watermark (newest event time minus the allowed lateness) passes them. ``advance(now)``
applies waiting events and fires what is due up to ``now``: reviews (lifecycle and tier
boundaries, lapsing tags), journey moments and churn labels. It does no I/O and reads no
clock: the same events in give the same outputs.

``Engine`` only coordinates; each idea is a module of its own:

- ``engine/ordering.py``: the events waiting for the watermark, and the clock;
- ``engine/fold.py``: one event into its profile, tags and journeys;
- ``engine/timers.py`` and ``engine/firing.py``: the timer queue, and firing what is due;
- ``engine/identity.py``: visitors and customers, and profiles handed between engines;
- ``engine/retention.py``: erasure and anonymisation after the retention period;
- ``engine/service_desk.py``: sentiment of support text, and routing of new tickets;
- ``engine/outputs.py``: the closed set of outputs and the sink protocol;
- ``engine/driver.py``: the one loop every runner feeds the engine through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from churn.tracker import ChurnTracker
from engine.config import EngineConfig, EngineStats
from engine.firing import Firing
from engine.fold import Fold
from engine.identity import Identity
from engine.ordering import EventOrder
from engine.outputs import Output
from engine.retention import Retention
from engine.service_desk import ServiceDesk
from engine.timers import Timers
from rules.coupon_pools import CouponLedger
from rules.loader import RuleSet
from rules.message_context import UnsubscribeLinks
from schemas import events as ev
from state.dedup import SeenEvents
from state.handoff import Forward, HandoffRequest, Internal
from state.kpis import KpiTally
from state.policy import ProfilePolicy
from state.stores.base import ProfileStore

_KIND = {cls: tag for tag, cls in ev.EVENT_TYPES.items()}
log = logging.getLogger("rapport.engine")


class Engine:
    """Events in, outputs out, in event time; see the module for its parts.

    >>> from state.stores import MemoryProfileStore
    >>> from rules.loader import RuleSet
    >>> from schemas.decode import decode_event
    >>> engine = Engine(MemoryProfileStore(), RuleSet.empty(), config=EngineConfig(allowed_lateness_seconds=0))
    >>> order = decode_event(b'{"type":"order.placed","event_id":"e1","customer_id":"c1",'
    ...     b'"occurred_at":"2026-01-05T10:00:00Z","properties":{"order_id":"o1","total":30}}')
    >>> [(c.kind, c.after) for c in engine.apply(order)]
    [('lifecycle_changed', 'new')]
    >>> [(c.kind, c.after) for c in engine.advance(order.occurred_at.timestamp() + 31 * 86400)]
    [('lifecycle_changed', 'active')]
    """

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
        self.home = home
        self.churn = churn
        self.rules = rules
        self.policy = policy or ProfilePolicy()
        self.config = config or EngineConfig()
        self.stats = EngineStats()
        #: Business KPI flows: funnel, orders, tickets, SLA, ratings (``state/kpis.py``).
        self.kpis = KpiTally(self.policy.support)
        #: Pool coupon codes handed out; kept across rule reloads.
        self.coupons = CouponLedger()
        #: Signs the unsubscribe links of the messages sends render.
        self.links = UnsubscribeLinks(self.config.message_key)
        self.order = EventOrder(self.config.allowed_lateness_seconds)
        self.timers = Timers()
        self.retention = Retention(self, self.policy.privacy)
        self.identity = Identity(self)
        self.firing = Firing(self)
        self.fold = Fold(self)
        #: Reads what customers write and routes new tickets (``engine/service_desk.py``).
        self.desk = ServiceDesk(self)
        self._seen = SeenEvents(self.config.dedup_max_entries, self.config.dedup_window_seconds)
        #: Positions of events applied or dropped since the last ``drain_done``.
        self._done: list[object] = []
        #: Events whose application raised, with the error, since the last ``drain_failed``.
        self._failed: list[tuple[ev.Event, str]] = []

    # --- the two verbs ------------------------------------------------------------------------

    def apply(
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
        watermark = self.order.see(ts)
        outputs: list[Output] = []
        if self.home is not None and event.anonymous_id is not None:
            self.identity.ask_for_visitor(event, ts, outputs)
        if ts < watermark:
            stats.late += 1
            outputs.extend(self.apply_now(event, ts, True, replayed, position))
        else:
            self.order.hold(ts, event.event_id, event, position, replayed)
        outputs.extend(self.advance(watermark))
        return outputs

    def advance(self, now: float) -> list[Output]:
        """Apply waiting events and fire what is due up to ``now``, in time order.

        At equal times an event goes before a timer: an order placed at the very moment a
        reminder falls due cancels it.
        """
        outputs: list[Output] = []
        order, timers, store = self.order, self.timers, self.store
        order.move_to(now)
        pending, queue = order.pending, timers.queue
        while True:
            event_at = pending[0][0] if pending else None
            timer_at = queue[0][0] if queue else None
            if (
                event_at is not None
                and event_at <= now
                and (timer_at is None or event_at <= timer_at)
            ):
                ts, _, _, item, position, replayed = order.pop()
                if type(item) is HandoffRequest or type(item) is Forward:
                    self.mark_done(position)
                    outputs.extend(self.identity.due(item))
                else:
                    outputs.extend(self.apply_now(item, ts, False, replayed, position))  # type: ignore[arg-type]
                continue
            if timer_at is None or timer_at > now:
                if self.identity.early:
                    self.identity.expire_early()
                return outputs
            due, kind, key = timers.pop()
            profile = store.get(key)
            if profile is None:
                continue  # merged away or erased
            if profile.awaiting:
                continue  # queued again when the visitor's profile arrives
            try:
                outputs.extend(self.firing.fire(profile, due, kind))
            except Exception:  # a bug: this timer is skipped, the others still fire
                self.stats.failed_timers += 1
                log.exception("timer %d at %.0f of one profile failed; skipped", kind, due)

    def receive(self, record: Internal, position: object = None) -> list[Output]:
        """Take a record another engine sent this one; return what became due."""
        return self.identity.receive(record, position)

    def finish(self, at: float) -> list[Output]:
        """End of input: fire everything due up to ``at``, then bring every profile to ``at``.

        Afterwards each profile's derived fields, windows, tags and churn risk are as of
        the same moment, so snapshots compare across customers and do not depend on
        arrival order.
        """
        outputs = self.advance(at)
        store, firing = self.store, self.firing
        for key in list(store.sorted_keys()):
            profile = store.get(key)
            if profile is not None:
                outputs.extend(firing.review_due(profile, max(at, profile.as_of), count=False))
        if self.churn is not None:  # every risk as of the end, not of its last snapshot
            for key in list(store.sorted_keys()):
                profile = store.get(key)
                if profile is not None and profile.customer_id is not None:
                    outputs.extend(firing.rescore(profile, max(at, profile.as_of)))
        outputs.extend(self.advance(at))
        return outputs

    # --- applying one event, guarded ----------------------------------------------------------

    def apply_now(
        self,
        event: ev.Event,
        ts: float,
        late: bool,
        replayed: bool,
        position: object,
        linked: bool = False,
    ) -> list[Output]:
        """Fold ``event`` in now (``engine/fold.py``), with an event that raises set aside
        instead of stopping the engine.

        Such an event is a bug's trigger, not bad input (that is refused when decoded):
        the caller dead-letters it (``drain_failed``) with the error, and the events after
        it are applied. Its profile keeps what the event changed before the error."""
        marked = len(self._done)
        try:
            return self.fold.apply(event, ts, late, replayed, position, linked)
        except Exception as error:
            self.stats.failed_events += 1
            self._failed.append((event, f"{type(error).__name__}: {error}"))
            if position is not None and position not in self._done[marked:]:
                self.mark_done(position)
            log.exception("applying event %s failed; dead-lettered", event.event_id)
            return []

    def mark_done(self, position: object) -> None:
        if position is not None:
            self._done.append(position)

    def drain_done(self) -> list[object]:
        """Positions of the events applied (or dropped) since the last call, in that order.

        A worker commits an input offset only once its event is done, so an event still
        waiting for the watermark is read again after a crash rather than lost.
        """
        done, self._done = self._done, []
        return done

    def drain_failed(self) -> list[tuple[ev.Event, str]]:
        """Events whose application raised since the last call, with the error."""
        failed, self._failed = self._failed, []
        return failed

    # --- state --------------------------------------------------------------------------------

    @property
    def watermark(self) -> float:
        """Event time up to which everything has fired: the newest event time minus the
        allowed lateness, or a later moment ``advance`` was moved to (a wall-clock tick)."""
        return self.order.watermark

    @property
    def newest_event_time(self) -> float:
        return self.order.newest

    @property
    def clock(self) -> tuple[float, float]:
        """(newest event time, latest moment advanced to): what ``restore_clock`` takes back."""
        return self.order.newest, self.order.advanced

    def restore_clock(self, newest: float, advanced: float) -> None:
        """Start from a clock saved before a restart, so events read again are judged late or
        not as they were the first time."""
        self.order.restore(newest, advanced)

    def resume(self) -> None:
        """Queue the timers of every stored profile (a worker recovering a partition)."""
        self.firing.resume()

    def swap_rules(self, rules: RuleSet) -> None:
        """Use a new, already validated rule set from the next event on."""
        self.rules = rules

    @property
    def pending_events(self) -> int:
        """Events accepted but not yet applied (waiting for the watermark)."""
        return len(self.order)

    @property
    def parked_events(self) -> int:
        """Events held for profiles waiting for a visitor's profile from another engine."""
        return self.identity.parked_events

    def pending_reviews(self) -> int:
        return len(self.timers)

    def coupon_pools(self) -> dict[str, tuple[int, int]]:
        """Pool name -> (codes left, codes in the pool), for the current rules."""
        pools = self.rules.journeys.policies.coupon_pools
        return {
            name: (self.coupons.remaining(name, codes), len(codes))
            for name, codes in sorted(pools.items())
        }
