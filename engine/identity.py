"""Identity across engines: which profile an event updates, visitors linked to customers,
and profiles handed over between engines that home them apart (``state/handoff.py``).

In one engine (replay) a visitor who identifies is folded into the customer's profile in
place. When engines home profiles apart (a worker's partitions), the customer's engine
asks the visitor's home for the profile (``HandoffRequest``) as soon as it reads the
identifying event, holds the customer's events ("parks" them) until the ``Handoff``
arrives, merges it, and applies the held events in order. A visitor's event that reaches
its old home after the link is sent on (``Forward``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import events as ev
from schemas.events import ANONYMOUS_PREFIX
from state.handoff import Forward, Handoff, HandoffRequest, Internal
from state.identity import merge_profiles
from state.profile import Profile

if TYPE_CHECKING:
    from engine.core import Engine
    from engine.outputs import Output

#: Sorts a handoff request after the events of the same moment.
_AFTER = "\uffff"

#: An event held until its customer's awaited visitor arrives: (event time, event, position,
#: replayed, late, linked); ``linked``: the event's own link was made.
Parked = tuple[float, ev.Event, object, bool, bool, bool]


class Identity:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: Profile key -> its events held until an awaited visitor profile arrives, in
        #: the order they were due.
        self.parked: dict[str, list[Parked]] = {}
        #: (customer key, anonymous key) -> a handoff that came before its request was made
        #: again (the identifying event read again after a restart), and its position.
        self.early: dict[tuple[str, str], tuple[Handoff, object]] = {}

    @property
    def parked_events(self) -> int:
        """Events held for profiles waiting for a visitor's profile from another engine."""
        return sum(len(held) for held in self.parked.values())

    def park(
        self,
        key: str,
        ts: float,
        event: ev.Event,
        position: object,
        replayed: bool,
        late: bool,
        linked: bool,
    ) -> None:
        """Hold ``event`` until the visitor profile ``key`` waits for arrives."""
        self.parked.setdefault(key, []).append((ts, event, position, replayed, late, linked))

    def drop(self, key: str) -> int:
        """Profile ``key`` is erased: drop its held events and early handoffs (they are
        done); how many events were held."""
        engine = self.engine
        held = self.parked.pop(key, [])
        for _, _, position, *_ in held:
            engine.mark_done(position)  # erased along with the profile they would have changed
        for pair in [pair for pair in self.early if pair[0] == key]:
            engine.stats.handoffs_dropped += 1
            engine.mark_done(self.early.pop(pair)[1])
        return len(held)

    # --- which profile an event updates -----------------------------------------------------

    def profile_for(
        self, event: ev.Event, ts: float, outputs: list[Output], linked: bool = False
    ) -> Profile | Forward:
        """The profile ``event`` updates, or a ``Forward`` when another engine homes it."""
        engine = self.engine
        store, home = engine.store, engine.home
        customer_id, anonymous_id = event.customer_id, event.anonymous_id
        if customer_id is not None:
            if home is not None and not home(customer_id):
                return Forward(to=customer_id, event=event)
            if anonymous_id is not None and not linked:
                anonymous_key = ANONYMOUS_PREFIX + anonymous_id
                if store.resolve(anonymous_key) != customer_id:
                    return self._identify(anonymous_key, customer_id, ts, outputs)
        key = store.resolve(event.profile_key)
        if home is not None and key != customer_id and not home(key):
            return Forward(to=key, event=event)
        profile = engine.retention.live(key, ts, outputs)
        if profile is None:
            profile = Profile(key=key, customer_id=customer_id if key == customer_id else None)
        return profile

    def _identify(
        self, anonymous_key: str, customer_key: str, ts: float, outputs: list[Output]
    ) -> Profile:
        """Link a visitor to a customer, folding the visitor's profile into the customer's.

        A visitor homed on another engine is asked for (``HandoffRequest``); the customer
        then waits for it, its events held, unless it came already.
        """
        engine = self.engine
        store, live = engine.store, engine.retention.live
        customer = live(customer_key, ts, outputs) or Profile(
            key=customer_key, customer_id=customer_key
        )
        visitor = live(anonymous_key, ts, outputs)
        if visitor is not None:
            self._fold_in(customer, visitor)
            store.delete(anonymous_key)
        store.link(anonymous_key, customer_key)
        home = engine.home
        if home is not None and not home(anonymous_key):
            # Asked for when the event was read (``ask_for_visitor``): here already, or
            # the customer waits for it.
            early = self.early.pop((customer_key, anonymous_key), None)
            if early is not None:
                self._merge_handoff(customer, early[0])
                engine.mark_done(early[1])
            else:
                customer.awaiting.append(anonymous_key)
        store.put(customer)
        return customer

    def ask_for_visitor(self, event: ev.Event, ts: float, outputs: list[Output]) -> None:
        """An event linking a visitor homed elsewhere to a customer homed here is read: ask
        the visitor's home for its profile now, so that it is sent as of the event's time
        (that engine holds the request until then) and is here when the event is applied."""
        engine = self.engine
        customer_id, home = event.customer_id, engine.home
        if customer_id is None or home is None or not home(customer_id):
            return
        anonymous_key = ANONYMOUS_PREFIX + str(event.anonymous_id)
        if home(anonymous_key) or engine.store.resolve(anonymous_key) == customer_id:
            return
        engine.stats.handoffs_requested += 1
        outputs.append(
            HandoffRequest(
                anonymous_key=anonymous_key,
                customer_key=customer_id,
                at=ts,
                cause=event.event_id,
            )
        )

    # --- records from other engines ---------------------------------------------------------

    def receive(self, record: Internal, position: object = None) -> list[Output]:
        """Take a record another engine sent this one; return what became due."""
        engine = self.engine
        if type(record) is Forward:
            event = record.event
            if type(event) is not ev.ErasureRequested or not record.to.startswith(ANONYMOUS_PREFIX):
                return engine.apply(event, position)
            at, order = event.occurred_at.timestamp(), event.event_id
        elif type(record) is HandoffRequest:
            at, order = record.at, _AFTER + record.cause
        else:
            return self._take_handoff(record, position)  # type: ignore[arg-type]
        # A request, or a visitor to forget: in event-time order with the visitor's events.
        if at < engine.watermark:
            engine.mark_done(position)
            return self.due(record)
        engine.order.hold(at, order, record, position, False)
        return []

    def due(self, record: HandoffRequest | Forward) -> list[Output]:
        """A held request or visitor to forget reached its event time."""
        if type(record) is HandoffRequest:
            return self._hand_over(record)
        self._forget_visitor(record.to)  # type: ignore[union-attr]
        return []

    def _hand_over(self, request: HandoffRequest) -> list[Output]:
        """The visitor's side: give up its profile and route it to the customer from now on."""
        engine = self.engine
        store = engine.store
        visitor = store.get(request.anonymous_key)
        store.delete(request.anonymous_key)
        store.link(request.anonymous_key, request.customer_key)
        engine.stats.handoffs_answered += 1
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
        engine = self.engine
        customer = engine.store.get(handoff.customer_key)
        anonymous_key = handoff.anonymous_key
        if customer is not None and anonymous_key in customer.awaiting:
            self._merge_handoff(customer, handoff)
            engine.mark_done(position)
            return self._unpark(customer) if not customer.awaiting else []
        anonymous_id = anonymous_key.removeprefix(ANONYMOUS_PREFIX)
        if customer is not None and anonymous_id in customer.anonymous_ids:
            engine.mark_done(position)  # linked before: an answer read again after a restart
            return []
        # Here before the identifying event is applied (it waits for the watermark, or is
        # read again after a restart): kept for then (``_identify``), or until that moment
        # is well past (``expire_early``).
        self.early[(handoff.customer_key, anonymous_key)] = (handoff, position)
        return []

    def _fold_in(self, customer: Profile, visitor: Profile) -> None:
        """Merge a visitor's profile into the customer's; the visitor's runs go on there."""
        merge_profiles(customer, visitor)
        self.engine.stats.merges += 1
        self.engine.firing.arm_journeys(customer, None)

    def _merge_handoff(self, customer: Profile, handoff: Handoff) -> None:
        if handoff.anonymous_key in customer.awaiting:
            customer.awaiting.remove(handoff.anonymous_key)
        if handoff.profile is not None:
            self._fold_in(customer, handoff.profile)
        self.engine.stats.handoffs_taken += 1
        self.engine.store.put(customer)

    def _unpark(self, profile: Profile) -> list[Output]:
        """Apply the events held for ``profile``, with its own timers between them, in order."""
        engine = self.engine
        store, firing = engine.store, engine.firing
        outputs: list[Output] = []
        key = profile.key
        for ts, event, position, replayed, late, linked in self.parked.pop(key, []):
            current = store.get(key)
            if current is not None and not current.awaiting:
                firing.fire_before(current, ts, outputs)
            outputs.extend(engine.apply_now(event, ts, late, replayed, position, linked))
        current = store.get(key)
        if current is not None and not current.awaiting:
            firing.arm_review(current)  # timers skipped while it waited
            firing.arm_journeys(current, None)
            outputs.extend(engine.advance(engine.watermark))
        return outputs

    def _forget_visitor(self, anonymous_key: str) -> None:
        """The customer a visitor was linked to is erased: drop the link and the visitor."""
        store = self.engine.store
        store.delete(anonymous_key)
        customer_key = store.resolve(anonymous_key)
        if customer_key != anonymous_key and store.get(customer_key) is None:
            store.unlink_all(customer_key)

    def expire_early(self) -> None:
        """Drop handoffs kept for a request that did not come within the allowed lateness."""
        engine = self.engine
        horizon = engine.watermark - engine.order.lateness
        for pair, (handoff, position) in list(self.early.items()):
            if handoff.at < horizon:
                del self.early[pair]
                engine.stats.handoffs_dropped += 1
                engine.mark_done(position)
