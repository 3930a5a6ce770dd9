"""Moving one journey run by one step: entering, exiting, completing, or executing the
step that is due (a wait, a send through the send gate, a branch, a tag, an emit, an end).

``JourneyRuntime`` (``rules/journey_runtime.py``) decides which run moves next; a
``RunMover`` makes the move and says what came of it (actions, milestones, tag changes).
"""

from __future__ import annotations

import hashlib
from bisect import insort
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from rules.actions import Action, Coupon, JourneyMilestone, JourneyOutput, action_id
from rules.attribution import derived_coupon_code, remember_issued
from rules.coupon_pools import CouponLedger
from rules.journey_names import JourneyNames
from rules.journey_steps import AwardPoints, Branch, Emit, End, Journey, Send, SetTag, Wait
from rules.message_context import DEVELOPMENT_LINKS, UnsubscribeLinks
from rules.message_render import Renderer, RenderFailure
from rules.send_gate import SendGate
from schemas.events import Event, OrderPlaced
from state.changes import ProfileChange
from state.journey_runs import (
    MAX_EXIT_MEMORY,
    MAX_GOAL_WATCHES,
    ContextValue,
    GoalWatch,
    JourneyHistory,
    JourneyRun,
    JourneyState,
    run_key,
)
from state.loyalty import Ledger, LoyaltyProgram, earn_fixed, local_day, settle
from state.profile import Profile

Output = JourneyOutput | ProfileChange


def cart_of(journey: Journey, entity: str | None) -> str | None:
    """The cart a run is about, when the journey is scoped by carts."""
    return entity if journey.entity == "cart_id" else None


def remember_finished(state: JourneyState, key: str, at: float) -> None:
    """Note that the run ``key`` (a journey and entity) ended at ``at``, the earliest end
    kept: an entity's run does not start again after it. The newest are kept."""
    known = state.exits_seen.get(key)
    if known is None or at < known:
        state.exits_seen[key] = at
        if len(state.exits_seen) > MAX_EXIT_MEMORY:
            oldest = min(state.exits_seen.items(), key=lambda item: (item[1], item[0]))[0]
            del state.exits_seen[oldest]


def _unit(*parts: str) -> float:
    """A stable number in [0, 1) from the parts: the same customer always lands in one arm."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_arm(journey: Journey, profile: Profile) -> str:
    """The arm a customer's run takes: holdout, a variant by weight, or main; the same
    customer always lands in the same arm of a journey."""
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


def next_moment(run: JourneyRun) -> float:
    """When ``run`` moves next: its entry, its due step, or its exit if earlier."""
    if not run.entered:
        return run.entered_at
    return run.due_at if run.exit_at is None else min(run.due_at, run.exit_at)


def entity_of(journey: Journey, event: Event) -> str | None:
    if journey.entity is None:
        return None
    value = getattr(event.properties, journey.entity, None)
    return value if isinstance(value, str) else None


def entities_of(journey: Journey, event: Event, profile: Profile) -> tuple[str | None, ...]:
    """The entities an exit or goal event is about: its own property, except that an order
    is about the carts it ended (``state/reducers.py``), named or not."""
    if journey.entity == "cart_id" and type(event) is OrderPlaced:
        record = profile.orders.recent.get(event.properties.order_id)
        if record is not None:
            return tuple(record.carts)
    entity = entity_of(journey, event)
    if journey.entity is not None and entity is None:
        return ()
    return (entity,)


class RunMover:
    def __init__(
        self,
        by_id: Mapping[str, Journey],
        gate: SendGate,
        renderer: Renderer | None = None,
        loyalty: LoyaltyProgram | None = None,
    ) -> None:
        self.by_id = by_id
        #: The points program ``points`` steps give from (None: no loyalty.yaml).
        self.loyalty = loyalty
        #: Holdout, consent, quiet hours and caps on every send (``rules/send_gate.py``).
        self.gate = gate
        #: Renders each send's message (``rules/message_render.py``); None: no templates.
        self.renderer = renderer
        #: Render suppressed and deferred sends too (``rapport rules preview``).
        self.render_every_send = False

    def move(
        self,
        profile: Profile,
        run: JourneyRun,
        out: list[Output],
        coupons: CouponLedger,
        links: UnsubscribeLinks = DEVELOPMENT_LINKS,
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
                remember_finished(state, key, run.due_at)  # this cart is done for good
            return
        step = journey.steps[run.step]
        at = run.due_at
        if isinstance(step, Wait):
            run.step += 1
            run.due_at = self._wait_until(profile, step, at, run)
        elif isinstance(step, Send):
            self._send(profile, journey, run, step, at, out, coupons, links)
        elif isinstance(step, Branch):
            names = JourneyNames(
                profile, SimpleNamespace(**run.context), cart_of(journey, run.entity), run
            )
            run.step = step.goto if step.condition(names) else step.otherwise
        elif isinstance(step, SetTag):
            run.step += 1
            _set_tag(profile, step, at, run.run_id, out)
        elif isinstance(step, AwardPoints):
            ident = action_id(journey.id, run.step, profile.key, run.entity, run.trigger)
            run.step += 1
            if run.arm != "holdout" and self.loyalty is not None:
                _award(profile, self.loyalty, step.points, at, ident, out)
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
                self._milestone(
                    "converted", run, profile, run.goal_at, run.goal_cause or "goal", run.goal_value
                )
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
        links: UnsubscribeLinks,
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
                derived_coupon_code(ident)
                if pool is None
                else coupons.claim(pool, self.gate.policies.coupon_pools[pool])
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
        payload = self._payload(profile, run, step.payload)
        message = detail = None
        if self.renderer is not None and (status == "sent" or self.render_every_send):
            try:
                message = self.renderer.render(
                    profile,
                    template=template,
                    channel=step.channel,
                    journey_id=journey.id,
                    entity_kind=journey.entity,
                    entity=run.entity,
                    payload=payload,
                    event=run.context,
                    coupon=coupon,
                    links=links,
                )
            except RenderFailure as failure:
                detail = str(failure)
                if status == "sent":
                    status, reason = "suppressed", "template_error"
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
                payload=payload,
                coupon=coupon,
                retry_at=retry,
                message=message,
                detail=detail,
            )
        )
        if retry is not None:
            run.due_at = retry
            run.deferrals += 1
            return
        if status == "sent" and needs_consent:
            self.gate.remember(profile, step.channel, at)
        if coupon is not None and status == "sent":
            remember_issued(profile.journeys, coupon, ident, run, at)
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
        view = JourneyNames(profile, None, cart_of(journey, run.entity))
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
        self,
        kind: str,
        run: JourneyRun,
        profile: Profile,
        at: float,
        cause: str,
        value: float | None = None,
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
            value,
        )


def _award(
    profile: Profile, program: LoyaltyProgram, points: int, at: float, ident: str, out: list[Output]
) -> None:
    """A journey's gift of points (a birthday's, say): spendable at once, expiring like
    any earning, keyed by the step's action id so that it is given once."""
    ledger = profile.points
    if ledger is None:
        ledger = profile.points = Ledger()
    settle(ledger, at)
    day = local_day(program, at, profile.trait("time_zone"))
    awarded = earn_fixed(ledger, program, "journey", f"journey:{ident}", points, at=at, day=day)
    if awarded:
        out.append(ProfileChange.make("points_awarded", profile.key, None, str(awarded), at, ident))


def _set_tag(profile: Profile, step: SetTag, at: float, cause: str, out: list[Output]) -> None:
    tags = profile.tags
    if step.present and step.tag not in tags:
        insort(tags, step.tag)
        out.append(ProfileChange.make("tag_added", profile.key, None, step.tag, at, cause))
    elif not step.present and step.tag in tags:
        tags.remove(step.tag)
        out.append(ProfileChange.make("tag_removed", profile.key, step.tag, None, at, cause))
