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

import calendar
import hashlib
from bisect import insort
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from rules.actions import Action, Coupon, JourneyMilestone, JourneyOutput, action_id, run_id
from rules.coupon_pools import CouponLedger
from rules.expressions import Condition
from rules.journey_compiler import Branch, Emit, End, Journey, Policies, Send, SetTag, Wait
from rules.profile_view import CART_GETTERS, PROFILE_GETTERS
from rules.send_gate import SendGate
from schemas.events import CustomerRegistered, CustomerUpdated, Envelope, Event, OrderPlaced
from state.changes import ProfileChange
from state.journey_runs import (
    MAX_EXIT_MEMORY,
    MAX_GOAL_WATCHES,
    MAX_RUNS,
    ContextValue,
    GoalWatch,
    JourneyHistory,
    JourneyRun,
    JourneyState,
    run_key,
)
from state.profile import DAY, Profile

Output = JourneyOutput | ProfileChange
#: Events that may change a trait a yearly trigger reads.
_TRAIT_EVENTS: frozenset[type[Envelope]] = frozenset((CustomerRegistered, CustomerUpdated))


class JourneyNames(Mapping[str, Any]):
    """What journey conditions and payloads see: the profile names plus ``event`` (the
    trigger's properties). In a run scoped by a cart, the cart names (``cart_value``,
    ``cart_items``) read that cart, not the customer's most recently touched one."""

    __slots__ = ("_cart", "_event", "_profile")

    def __init__(self, profile: Profile, event: Any, cart: str | None = None) -> None:
        self._profile = profile
        self._event = event
        self._cart = cart

    def __getitem__(self, name: str) -> Any:
        if self._cart is not None and name in CART_GETTERS:
            return CART_GETTERS[name](self._profile.carts.get(self._cart))
        getter = PROFILE_GETTERS.get(name)
        if getter is not None:
            return getter(self._profile)
        if name == "event" and self._event is not None:
            return self._event
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        yield from PROFILE_GETTERS
        yield "event"

    def __len__(self) -> int:
        return len(PROFILE_GETTERS) + 1


def _unit(*parts: str) -> float:
    """A stable number in [0, 1) from the parts: the same customer always lands in one arm."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class JourneyRuntime:
    def __init__(self, journeys: tuple[Journey, ...], policies: Policies) -> None:
        self.journeys = journeys
        self.policies = policies
        #: Holdout, consent, quiet hours and caps on every send (``rules/send_gate.py``).
        self.gate = SendGate(policies)
        self.by_id = {journey.id: journey for journey in journeys}
        self._by_trigger: dict[type[Envelope], list[Journey]] = {}
        self._by_exit: dict[type[Envelope], list[tuple[Journey, Condition | None]]] = {}
        self._by_goal: dict[type[Envelope], list[Journey]] = {}
        self._by_change: dict[str, list[Journey]] = {}
        self._inactivity = tuple(j for j in journeys if j.inactivity_seconds is not None)
        self._yearly = tuple(j for j in journeys if j.anniversary is not None)
        self._inactivity_ids = frozenset(j.id for j in self._inactivity)
        self._time_triggered = frozenset(j.id for j in (*self._inactivity, *self._yearly))
        for journey in journeys:
            if journey.trigger_event is not None:
                self._by_trigger.setdefault(journey.trigger_event, []).append(journey)
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
            for entity in _entities(journey, event, profile):
                names = JourneyNames(profile, event.properties, _cart_of(journey, entity))
                if condition is None or condition(names):
                    self._record_exit(state, journey, entity, event, ts)
        for journey in self._by_goal.get(cls, ()):
            for entity in _entities(journey, event, profile):
                self._record_goal(profile, journey, entity, event, ts, out)
        if cls in _TRAIT_EVENTS:
            for journey in self._yearly:  # the birthday may have changed
                state.time_checks.pop(journey.id, None)
        if not late:  # a late event never starts a run
            for journey in self._by_trigger.get(cls, ()):
                self._trigger_by_event(profile, journey, event, ts)
        # Only what can move the next due moment: a run started or ended, an exit noted,
        # a trait a yearly trigger reads, an inactivity check not armed yet.
        if (
            len(state.runs) != runs_before
            or cls in self._by_exit
            or cls in _TRAIT_EVENTS
            or not state.time_checks.keys() >= self._inactivity_ids
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
        _remember_finished(state, key, ts)
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
                    )
                )
        run = state.runs.get(run_key(journey.id, entity))
        if (
            run is not None
            and not run.entered
            and ts >= run.entered_at
            and (run.goal_at is None or ts < run.goal_at)
        ):
            run.goal_at, run.goal_cause = ts, event.event_id

    def _trigger_by_event(
        self, profile: Profile, journey: Journey, event: Event, ts: float
    ) -> None:
        entity = _entity(journey, event)
        if journey.entity is not None and entity is None:
            return
        if not self._may_enter(profile.journeys, journey, entity, ts):
            return  # cheap checks first: most trigger events meet a run already going
        names = JourneyNames(profile, event.properties, _cart_of(journey, entity))
        if journey.when is not None and not journey.when(names):
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

    def _fire_inactivity(
        self, profile: Profile, journey: Journey, last_seen: float, due: float
    ) -> None:
        state = profile.journeys
        if state.time_triggers_fired.get(journey.id) == last_seen:
            return
        state.time_triggers_fired[journey.id] = last_seen
        if journey.when is not None and not journey.when(JourneyNames(profile, None)):
            return
        self._enter(profile, journey, None, due, f"inactive@{due:.0f}", {}, None)

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
            arm=self._arm(journey, profile),
            due_at=at,
            context=context,
        )
        exit_at = state.exits_seen.get(key)
        if entity is None and exit_at is not None and exit_at >= at:
            run.exit_at = exit_at
        state.runs[key] = run

    def _arm(self, journey: Journey, profile: Profile) -> str:
        customer = profile.customer_id or profile.key
        if journey.holdout and _unit("holdout", journey.id, customer) < journey.holdout:
            return "holdout"
        if not journey.variants:
            return "main"
        point = _unit("variant", journey.id, customer) * sum(w for _, w, _ in journey.variants)
        for variant, weight, _ in journey.variants:
            if point < weight:
                return variant
            point -= weight
        return journey.variants[-1][0]

    # --- moving runs as event time passes ---------------------------------------------------

    def advance(self, profile: Profile, now: float, coupons: CouponLedger) -> list[Output]:
        """Move every run whose next moment is at or before ``now``, earliest first.

        Sends with a pooled coupon take their codes from ``coupons``.
        """
        out: list[Output] = []
        state = profile.journeys
        self._fire_time_triggers(profile, now)
        by_id = self.by_id
        while True:
            best: tuple[float, int, str] | None = None
            for key, run in state.runs.items():
                moment = _next_moment(run)
                if moment <= now:
                    journey = by_id.get(run.journey_id)
                    if journey is not None:
                        rank = (moment, -journey.priority, key)
                        if best is None or rank < best:
                            best = rank
            if best is None:
                break
            self._step(profile, state.runs[best[2]], out, coupons)
        self._drop_orphans(state)
        self._prune(profile, now)
        self._refresh_due(profile)
        return out

    def _fire_time_triggers(self, profile: Profile, now: float) -> None:
        checks = profile.journeys.time_checks
        for journey in self._inactivity:
            assert journey.inactivity_seconds is not None
            check = checks.get(journey.id)
            last = profile.last_seen_at
            if check is None or check > now or last is None:
                continue
            due = last + journey.inactivity_seconds
            if due <= now:
                self._fire_inactivity(profile, journey, last, due)
                del checks[journey.id]  # the next event arms it again
            else:
                checks[journey.id] = due  # the customer came back: look again later
        for journey in self._yearly:
            check = checks.get(journey.id)
            if check is None or check > now:
                continue
            profile.journeys.time_triggers_fired[journey.id] = check
            del checks[journey.id]
            if journey.when is None or journey.when(JourneyNames(profile, None)):
                assert journey.anniversary is not None
                self._enter(
                    profile, journey, None, check, f"{journey.anniversary[0]}@{check:.0f}", {}, None
                )

    def _step(
        self, profile: Profile, run: JourneyRun, out: list[Output], coupons: CouponLedger
    ) -> None:
        """Advance one run by one move: enter, exit, or execute the step that is due."""
        journey = self.by_id[run.journey_id]
        state = profile.journeys
        key = run_key(run.journey_id, run.entity)
        if not run.entered:
            run.entered = True
            history = state.history.setdefault(run.journey_id, JourneyHistory())
            history.entries += 1
            history.last_entered_at = run.entered_at
            out.append(self._milestone("entered", run, profile, run.entered_at, run.trigger))
            self._watch_goal(profile, journey, run, out)
            return
        if run.exit_at is not None and run.exit_at <= run.due_at:
            del state.runs[key]
            out.append(
                self._milestone("exited", run, profile, run.exit_at, run.exit_cause or "exit")
            )
            return
        if run.step >= len(journey.steps):
            del state.runs[key]
            out.append(self._milestone("completed", run, profile, run.due_at, run.trigger))
            if run.entity is not None and not journey.same_entity:
                _remember_finished(state, key, run.due_at)  # this cart is done for good
            return
        step = journey.steps[run.step]
        at = run.due_at
        if isinstance(step, Wait):
            run.step += 1
            run.due_at = self._wait_until(profile, step, at, run)
        elif isinstance(step, Send):
            self._send(profile, journey, run, step, at, out, coupons)
        elif isinstance(step, Branch):
            names = JourneyNames(
                profile, SimpleNamespace(**run.context), _cart_of(journey, run.entity)
            )
            run.step = step.goto if step.condition(names) else step.otherwise
        elif isinstance(step, SetTag):
            run.step += 1
            _set_tag(profile, step, at, run.run_id, out)
        elif isinstance(step, Emit):
            out.append(
                self._action(
                    profile,
                    run,
                    at,
                    action_id(journey.id, run.step, profile.key, run.entity, run.trigger),
                    status="sent",
                    kind="emit",
                    event=step.event,
                    payload=self._payload(profile, run, step.payload),
                )
            )
            run.step += 1
        elif isinstance(step, End):
            run.step = len(journey.steps)

    def _watch_goal(
        self, profile: Profile, journey: Journey, run: JourneyRun, out: list[Output]
    ) -> None:
        if journey.goal_event is None:
            return
        until = run.entered_at + journey.goal_seconds
        if run.goal_at is not None and run.goal_at <= until:
            out.append(
                self._milestone("converted", run, profile, run.goal_at, run.goal_cause or "goal")
            )
            return
        watches = profile.journeys.goal_watches
        watches.append(
            GoalWatch(
                run_id=run.run_id,
                journey_id=run.journey_id,
                entity=run.entity,
                arm=run.arm,
                entered_at=run.entered_at,
                until=until,
            )
        )
        if len(watches) > MAX_GOAL_WATCHES:
            del watches[0]

    def _send(
        self,
        profile: Profile,
        journey: Journey,
        run: JourneyRun,
        step: Send,
        at: float,
        out: list[Output],
        coupons: CouponLedger,
    ) -> None:
        index = run.step
        template = step.template
        for variant, _, replacements in journey.variants:
            if variant == run.arm:
                template = replacements.get(template, template)
        status, reason, retry, needs_consent = self.gate.check(
            profile, step.channel, run.arm, journey.on_cap, at
        )
        ident = action_id(journey.id, index, profile.key, run.entity, run.trigger)
        defers = None
        if status == "deferred":
            ident, defers = f"{ident}~{run.deferrals + 1}", ident
        coupon = None
        if status == "sent" and step.coupon is not None:
            pool = step.coupon.pool
            code = (
                _coupon_code(ident)
                if pool is None
                else coupons.claim(pool, self.policies.coupon_pools[pool])
            )
            if code is None:
                status, reason = "suppressed", "coupon_pool_empty"
            else:
                coupon = Coupon(
                    code=code,
                    percent=step.coupon.percent,
                    amount=step.coupon.amount,
                    valid_until=at + step.coupon_valid_seconds,
                    pool=pool,
                )
        out.append(
            self._action(
                profile,
                run,
                at,
                ident,
                defers=defers,
                status=status,
                reason=reason,
                kind="send",
                channel=step.channel,
                needs_consent=needs_consent,
                template=template,
                payload=self._payload(profile, run, step.payload),
                coupon=coupon,
                retry_at=retry,
            )
        )
        if retry is not None:
            run.due_at = retry
            run.deferrals += 1
            return
        if status == "sent" and needs_consent:
            self.gate.remember(profile, step.channel, at)
        run.step += 1

    @staticmethod
    def _action(profile: Profile, run: JourneyRun, at: float, ident: str, **fields: Any) -> Action:
        """An action of ``run``'s current step; ``fields`` say what kind and what happened."""
        return Action(
            action_id=ident,
            journey_id=run.journey_id,
            step=run.step,
            arm=run.arm,
            profile_key=profile.key,
            customer_id=profile.customer_id,
            entity=run.entity,
            trigger=run.trigger,
            at=at,
            **fields,
        )

    def _payload(
        self, profile: Profile, run: JourneyRun, fields: tuple[tuple[str, str], ...]
    ) -> dict[str, ContextValue]:
        journey = self.by_id[run.journey_id]
        view = JourneyNames(profile, None, _cart_of(journey, run.entity))
        payload: dict[str, ContextValue] = {}
        for name, source in fields:
            if source.startswith("event."):
                payload[name] = run.context.get(source.removeprefix("event."))
            else:
                value = view[source]
                payload[name] = sorted(value) if isinstance(value, frozenset) else value
        return payload

    def _wait_until(self, profile: Profile, step: Wait, at: float, run: JourneyRun) -> float:
        if step.per is not None and step.durations is not None:
            value = run.context.get(step.per)
            chosen = step.durations.get(value) if isinstance(value, str) else None
            return at + (chosen if chosen is not None else step.seconds or 0.0)
        if step.seconds is not None:
            return at + step.seconds
        assert step.until is not None
        hour, minute = step.until
        local = datetime.fromtimestamp(at, UTC).astimezone(self.gate.zone(profile))
        target = datetime(local.year, local.month, local.day, hour, minute, tzinfo=local.tzinfo)
        if target.timestamp() <= at:
            day = local.date() + timedelta(days=1)
            target = datetime(day.year, day.month, day.day, hour, minute, tzinfo=local.tzinfo)
        return target.timestamp()

    # --- bookkeeping ------------------------------------------------------------------------

    def _milestone(
        self, kind: str, run: JourneyRun, profile: Profile, at: float, cause: str
    ) -> JourneyMilestone:
        return JourneyMilestone.make(
            kind,  # type: ignore[arg-type]
            run.journey_id,
            run.run_id,
            run.arm,
            profile.key,
            run.entity,
            at,
            cause,
        )

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
        checks = state.time_checks
        if not checks.keys() <= self._time_triggered:
            for journey_id in [j for j in checks if j not in self._time_triggered]:
                del checks[journey_id]  # that journey left the rules (a reload)
        last = profile.last_seen_at
        for journey in self._inactivity:
            if journey.id not in checks and last is not None:
                assert journey.inactivity_seconds is not None
                if state.time_triggers_fired.get(journey.id) != last:
                    checks[journey.id] = last + journey.inactivity_seconds
        for journey in self._yearly:
            if journey.id not in checks:
                moment = self._next_anniversary(profile, journey)
                if moment is not None:
                    checks[journey.id] = moment
        due = min(checks.values()) if checks else None
        for run in state.runs.values():
            moment = _next_moment(run)
            if due is None or moment < due:
                due = moment
        state.next_due_at = due

    def _next_anniversary(self, profile: Profile, journey: Journey) -> float | None:
        """The first yearly moment after both the trait was set and the last firing."""
        assert journey.anniversary is not None
        trait, hour, minute = journey.anniversary
        stamped = profile.traits.get(trait)
        if stamped is None or not isinstance(stamped.value, str):
            return None
        after = max(stamped.at, profile.journeys.time_triggers_fired.get(journey.id, stamped.at))
        zone = profile.trait("time_zone")
        zone_name = zone if isinstance(zone, str) else self.policies.default_time_zone
        return _next_yearly(stamped.value, after, zone_name, hour, minute)


@lru_cache(maxsize=65_536)
def _next_yearly(
    date_text: str, after: float, zone_name: str, hour: int, minute: int
) -> float | None:
    """The first moment of that month and day, at that local time, later than ``after``."""
    month, day = int(date_text[5:7]), int(date_text[8:10])
    zone = ZoneInfo(zone_name)
    year = datetime.fromtimestamp(after, UTC).year
    for candidate in (year, year + 1):
        moment = _yearly_moment(candidate, month, day, hour, minute, zone)
        if moment > after:
            return moment
    return None


def _yearly_moment(
    year: int, month: int, day: int, hour: int, minute: int, zone: ZoneInfo
) -> float:
    if month == 2 and day == 29 and not calendar.isleap(year):
        day = 28
    return datetime(year, month, day, hour, minute, tzinfo=zone).timestamp()


def _next_moment(run: JourneyRun) -> float:
    if not run.entered:
        return run.entered_at
    return run.due_at if run.exit_at is None else min(run.due_at, run.exit_at)


def _entity(journey: Journey, event: Event) -> str | None:
    if journey.entity is None:
        return None
    value = getattr(event.properties, journey.entity, None)
    return value if isinstance(value, str) else None


def _remember_finished(state: JourneyState, key: str, at: float) -> None:
    """Note that the run ``key`` (a journey and entity) ended at ``at``, the earliest end
    kept: an entity's run does not start again after it. The newest are kept."""
    known = state.exits_seen.get(key)
    if known is None or at < known:
        state.exits_seen[key] = at
        if len(state.exits_seen) > MAX_EXIT_MEMORY:
            oldest = min(state.exits_seen.items(), key=lambda item: (item[1], item[0]))[0]
            del state.exits_seen[oldest]


def _cart_of(journey: Journey, entity: str | None) -> str | None:
    """The cart a run is about, when the journey is scoped by carts."""
    return entity if journey.entity == "cart_id" else None


def _entities(journey: Journey, event: Event, profile: Profile) -> tuple[str | None, ...]:
    """The entities an exit or goal event is about: its own property, except that an order
    is about the carts it ended (``state/reducers.py``), named or not."""
    if journey.entity == "cart_id" and type(event) is OrderPlaced:
        record = profile.orders.recent.get(event.properties.order_id)
        if record is not None:
            return tuple(record.carts)
    entity = _entity(journey, event)
    if journey.entity is not None and entity is None:
        return ()
    return (entity,)


def _set_tag(profile: Profile, step: SetTag, at: float, cause: str, out: list[Output]) -> None:
    tags = profile.tags
    if step.present and step.tag not in tags:
        insort(tags, step.tag)
        out.append(ProfileChange.make("tag_added", profile.key, None, step.tag, at, cause))
    elif not step.present and step.tag in tags:
        tags.remove(step.tag)
        out.append(ProfileChange.make("tag_removed", profile.key, step.tag, None, at, cause))


def _coupon_code(ident: str) -> str:
    """A unique-per-action code, derived so that a replay hands out the same one."""
    digest = hashlib.blake2b(ident.encode(), digest_size=8, person=b"rapport-coupon").hexdigest()
    return "RP-" + digest[:12].upper()
