"""Running journeys in event time: entries, waits, sends under policy, exits and goals.

Events only *record* what happened to a customer's runs (a trigger, an exit, a goal);
runs move when the watermark passes their next moment (``fire``). By then every event
up to that moment has arrived (within the allowed lateness), so a reminder never goes
out for a cart whose order came first, whatever the arrival order. Every output has a
deterministic id.

>>> runtime = JourneyRuntime((), Policies.default())
>>> runtime.journeys
()
"""

from __future__ import annotations

from typing import Any

from rules.actions import JourneyMilestone, JourneyOutput, run_id
from rules.attribution import order_value, redeem
from rules.coupon_pools import CouponLedger
from rules.expressions import Condition
from rules.journey_moves import (
    RunMover,
    assign_arm,
    cart_of,
    entities_of,
    entity_of,
    next_moment,
    remember_finished,
)
from rules.journey_names import JourneyNames, note_engagement
from rules.journey_steps import Journey
from rules.message_context import DEVELOPMENT_LINKS, UnsubscribeLinks
from rules.message_render import Renderer
from rules.policy_compiler import Policies
from rules.send_gate import SendGate
from rules.time_triggers import TimeTriggers
from schemas.events import (
    CustomerRegistered,
    CustomerUpdated,
    Envelope,
    Event,
    MessageClicked,
    MessageOpened,
    OrderPlaced,
)
from state.changes import ProfileChange
from state.journey_runs import (
    MAX_RUNS,
    ContextValue,
    JourneyRun,
    JourneyState,
    run_key,
)
from state.loyalty import LoyaltyProgram
from state.profile import DAY, Profile
from state.reducers.points import POINTS_KINDS

Output = JourneyOutput | ProfileChange
#: Events that may change a trait a yearly trigger reads.
_TRAIT_EVENTS: frozenset[type[Envelope]] = frozenset((CustomerRegistered, CustomerUpdated))
_ENGAGEMENT: frozenset[type[Envelope]] = frozenset((MessageOpened, MessageClicked))


class JourneyRuntime:
    """The compiled journeys of a rule set, run on profiles: ``apply`` records what an
    event means for the runs (triggers, exits, goals), ``advance`` moves the runs whose
    moment has come and returns what they did.

    >>> from rules.coupon_pools import CouponLedger
    >>> from rules.loader import DEFAULT_RULES_DIR, load_rules
    >>> from schemas.decode import decode_event
    >>> from state.profile import Profile
    >>> from state.reducers import apply_event
    >>> runtime = load_rules(DEFAULT_RULES_DIR).journeys
    >>> added = decode_event(b'{"type":"cart.item_added","event_id":"e1","customer_id":"c1",'
    ...     b'"occurred_at":"2026-03-02T10:00:00Z","properties":{"cart_id":"k1","product_id":"p1","price":30}}')
    >>> profile = apply_event(Profile(key="c1", customer_id="c1"), added)
    >>> runtime.apply(profile, added, added.occurred_at.timestamp(), late=False)
    []
    >>> [m.kind for m in runtime.advance(profile, profile.journeys.next_due_at, CouponLedger())]
    ['entered']
    >>> [(a.template, a.status, a.reason) for a in runtime.advance(
    ...     profile, profile.journeys.next_due_at, CouponLedger())]
    [('cart_reminder', 'suppressed', 'no_consent')]
    """

    def __init__(
        self,
        journeys: tuple[Journey, ...],
        policies: Policies,
        renderer: Renderer | None = None,
        loyalty: LoyaltyProgram | None = None,
    ) -> None:
        self.journeys = journeys
        self.policies = policies
        #: Holdout, consent, quiet hours and caps on every send (``rules/send_gate.py``).
        self.gate = SendGate(policies)
        self.by_id = {journey.id: journey for journey in journeys}
        #: Makes each move of a run (``rules/journey_moves.py``).
        self.mover = RunMover(self.by_id, self.gate, renderer, loyalty)
        #: Event kind -> the journeys it starts, each with its condition.
        self._by_trigger: dict[type[Envelope], list[tuple[Journey, Condition | None]]] = {}
        self._by_exit: dict[type[Envelope], list[tuple[Journey, Condition | None]]] = {}
        self._by_goal: dict[type[Envelope], list[Journey]] = {}
        self._by_change: dict[str, list[Journey]] = {}
        #: Journeys that start with time alone (``rules/time_triggers.py``).
        self.time_triggers = TimeTriggers(journeys, policies.default_time_zone)
        for journey in journeys:
            if journey.trigger_event is not None:
                self._by_trigger.setdefault(journey.trigger_event, []).append(
                    (journey, journey.when)
                )
            for cls, condition in journey.also_on:
                self._by_trigger.setdefault(cls, []).append((journey, condition))
            if journey.trigger_change is not None:
                self._by_change.setdefault(journey.trigger_change[0], []).append(journey)
            for cls, condition in journey.exit_on:
                self._by_exit.setdefault(cls, []).append((journey, condition))
            if journey.goal_event is not None:
                self._by_goal.setdefault(journey.goal_event, []).append(journey)

    # --- recording what happened ----------------------------------------------------------

    def apply(
        self,
        profile: Profile,
        event: Event,
        ts: float,
        late: bool,
    ) -> list[Output]:
        """Record exits, goals and triggers of one applied event; fire nothing."""
        if not self.journeys:
            return []
        out: list[Output] = []
        cls = type(event)
        state = profile.journeys
        runs_before = len(state.runs)
        for journey, condition in self._by_exit.get(cls, ()):
            for entity in entities_of(journey, event, profile):
                names = JourneyNames(profile, event.properties, cart_of(journey, entity))
                if condition is None or condition(names):
                    self._record_exit(state, journey, entity, event, ts)
        for journey in self._by_goal.get(cls, ()):
            for entity in entities_of(journey, event, profile):
                self._record_goal(profile, journey, entity, event, ts, out)
        if state.coupons and isinstance(event, OrderPlaced):
            redeemed = redeem(state, profile.key, event.properties, event.event_id, ts)
            if redeemed is not None:
                out.append(redeemed)
        if cls in _ENGAGEMENT:
            note_engagement(state, self.by_id, profile.key, event)
        if cls in _TRAIT_EVENTS:
            self.time_triggers.traits_changed(state)  # the birthday may have changed
        points = cls in POINTS_KINDS and self.time_triggers.points_changed(state)
        if not late:  # a late event never starts a run
            for journey, when in self._by_trigger.get(cls, ()):
                self._trigger_by_event(profile, journey, when, event, ts)
        # Only what can move the next due moment: a run started or ended, an exit noted,
        # a trait a yearly trigger reads, an inactivity check not armed yet.
        if (
            len(state.runs) != runs_before
            or cls in self._by_exit
            or cls in _TRAIT_EVENTS
            or points
            or self.time_triggers.unarmed(state)
        ):
            self._refresh_due(profile)
        return out

    def on_changes(self, profile: Profile, changes: list[ProfileChange]) -> None:
        """Start runs of journeys triggered by profile changes (tier, lifecycle, tags)."""
        if not self._by_change:
            return
        for change in changes:
            for journey in self._by_change.get(change.kind, ()):
                assert journey.trigger_change is not None
                _, to, tag = journey.trigger_change
                value = change.after if change.kind != "tag_removed" else change.before
                if to is not None and value != to:
                    continue
                if tag is not None and value != tag:
                    continue
                self._enter(profile, journey, None, change.at, change.change_id, {}, None)
        self._refresh_due(profile)

    def _record_exit(
        self, state: JourneyState, journey: Journey, entity: str | None, event: Event, ts: float
    ) -> None:
        key = run_key(journey.id, entity)
        remember_finished(state, key, ts)
        run = state.runs.get(key)
        if run is None:
            return
        if ts < run.entered_at:
            if journey.entity is not None and not run.entered:
                del state.runs[key]  # the entity was finished before this run would have begun
            return
        if run.exit_at is None or (ts, event.event_id) < (run.exit_at, run.exit_cause or ""):
            run.exit_at, run.exit_cause = ts, event.event_id

    def _record_goal(
        self,
        profile: Profile,
        journey: Journey,
        entity: str | None,
        event: Event,
        ts: float,
        out: list[Output],
    ) -> None:
        state = profile.journeys
        for watch in list(state.goal_watches):
            if (
                watch.journey_id == journey.id
                and watch.entity == entity
                and watch.entered_at <= ts <= watch.until
            ):
                state.goal_watches.remove(watch)
                out.append(
                    JourneyMilestone.make(
                        "converted",
                        journey.id,
                        watch.run_id,
                        watch.arm,
                        profile.key,
                        entity,
                        ts,
                        event.event_id,
                        order_value(event),
                    )
                )
        run = state.runs.get(run_key(journey.id, entity))
        if (
            run is not None
            and not run.entered
            and ts >= run.entered_at
            and (run.goal_at is None or ts < run.goal_at)
        ):
            run.goal_at, run.goal_cause, run.goal_value = ts, event.event_id, order_value(event)

    def _trigger_by_event(
        self, profile: Profile, journey: Journey, when: Condition | None, event: Event, ts: float
    ) -> None:
        entity = entity_of(journey, event)
        if journey.entity is not None and entity is None:
            return
        if not self._may_enter(profile.journeys, journey, entity, ts):
            return  # cheap checks first: most trigger events meet a run already going
        names = JourneyNames(profile, event.properties, cart_of(journey, entity))
        if when is not None and not when(names):
            return
        context: dict[str, ContextValue] = {
            name: value
            for name in journey.captured
            if isinstance(value := getattr(event.properties, name, None), str | int | float | bool)
        }
        self._enter(profile, journey, entity, ts, event.event_id, context, event.properties)

    @staticmethod
    def _may_enter(state: JourneyState, journey: Journey, entity: str | None, at: float) -> bool:
        """Whether a trigger at ``at`` could start (or re-anchor) a run, before any condition."""
        run = state.runs.get(run_key(journey.id, entity))
        if run is not None:
            return not run.entered and at < run.entered_at
        history = state.history.get(journey.id)
        if history is None:
            return True
        if journey.max_entries is not None and history.entries >= journey.max_entries:
            return False
        last = history.last_entered_at
        return not (
            journey.cooldown_seconds is not None
            and last is not None
            and at < last + journey.cooldown_seconds
        )

    def _enter(
        self,
        profile: Profile,
        journey: Journey,
        entity: str | None,
        at: float,
        trigger: str,
        context: dict[str, ContextValue],
        event_properties: Any,
    ) -> None:
        """Start (or re-anchor) a run; it takes effect when the watermark passes ``at``."""
        state = profile.journeys
        key = run_key(journey.id, entity)
        run = state.runs.get(key)
        if run is not None:
            if not run.entered and at < run.entered_at:
                run.entered_at, run.due_at, run.trigger = at, at, trigger
                run.run_id = run_id(journey.id, profile.key, entity, trigger)
                run.context = context
            return
        if entity is not None:
            finished = state.exits_seen.get(key)
            if finished is not None and finished < at:
                return  # that cart / ticket / order was already done
        history = state.history.get(journey.id)
        if history is not None:
            if journey.max_entries is not None and history.entries >= journey.max_entries:
                return
            last = history.last_entered_at
            if (
                journey.cooldown_seconds is not None
                and last is not None
                and at < last + journey.cooldown_seconds
            ):
                return
        if len(state.runs) >= MAX_RUNS:
            return
        run = JourneyRun(
            run_id=run_id(journey.id, profile.key, entity, trigger),
            journey_id=journey.id,
            entity=entity,
            trigger=trigger,
            entered_at=at,
            arm=assign_arm(journey, profile),
            due_at=at,
            context=context,
        )
        exit_at = state.exits_seen.get(key)
        if entity is None and exit_at is not None and exit_at >= at:
            run.exit_at = exit_at
        state.runs[key] = run

    # --- moving runs as event time passes ---------------------------------------------------

    def advance(
        self,
        profile: Profile,
        now: float,
        coupons: CouponLedger,
        links: UnsubscribeLinks = DEVELOPMENT_LINKS,
    ) -> list[Output]:
        """Move every run whose next moment is at or before ``now``, earliest first.
        Sends with a pooled coupon take their codes from ``coupons``; messages sign their
        unsubscribe links with ``links``."""
        out: list[Output] = []
        state = profile.journeys
        self.time_triggers.fire(profile, now, self._enter_at)
        by_id = self.by_id
        while True:
            best: tuple[float, int, str] | None = None
            for key, run in state.runs.items():
                moment = next_moment(run)
                if moment <= now:
                    journey = by_id.get(run.journey_id)
                    if journey is not None:
                        rank = (moment, -journey.priority, key)
                        if best is None or rank < best:
                            best = rank
            if best is None:
                break
            self.mover.move(profile, state.runs[best[2]], out, coupons, links)
        self._drop_orphans(state)
        self._prune(profile, now)
        self._refresh_due(profile)
        return out

    def _enter_at(
        self,
        profile: Profile,
        journey: Journey,
        at: float,
        trigger: str,
        context: dict[str, ContextValue],
    ) -> None:
        self._enter(profile, journey, None, at, trigger, context, None)

    def _drop_orphans(self, state: JourneyState) -> None:
        """Runs of journeys removed from the rules stop (a reload dropped them)."""
        by_id = self.by_id
        orphans = [key for key, run in state.runs.items() if run.journey_id not in by_id]
        for key in orphans:
            del state.runs[key]

    def _prune(self, profile: Profile, now: float) -> None:
        state = profile.journeys
        horizon = now - DAY
        if any(watch.until < horizon for watch in state.goal_watches):
            state.goal_watches = [w for w in state.goal_watches if w.until >= horizon]

    def _refresh_due(self, profile: Profile) -> None:
        state = profile.journeys
        due = self.time_triggers.arm(profile)
        for run in state.runs.values():
            moment = next_moment(run)
            if due is None or moment < due:
                due = moment
        state.next_due_at = due
