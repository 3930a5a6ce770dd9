"""Journeys that start with time alone: after a spell without any event from the
customer (``inactivity``), on a yearly date (``anniversary: birthday``), and when
loyalty points are about to expire (``points_expiring: 30d``).

A points-expiry check looks at the soonest lot expiry it has not fired for, a window
before it. Then, if at least ``at_least`` spendable points expire within the window, the
run starts, and its messages read ``event.points``, ``event.expires_at`` and
``event.days_to_expiry`` as of that moment. The profile's own names are as of its last
event, which may be weeks earlier. Whether it fired or not, the check moves on to the
next expiry. An event that changes the ledger (an order, a refund, a redemption) makes it
look again.

Each such journey keeps one check per profile (``JourneyState.time_checks``): the
moment it next has to look. The runtime fires the checks that are due when the
watermark passes them, in time order with everything else, and re-arms them.

>>> TimeTriggers((), "UTC").ids
frozenset()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from rules.anniversaries import next_anniversary
from rules.journey_names import JourneyNames
from rules.journey_steps import Journey
from state.journey_runs import ContextValue, JourneyState
from state.loyalty import Ledger, expiring_within
from state.profile import DAY, Profile

#: Starts a run: (profile, journey, the moment, the trigger's name for the run id, what
#: its messages read as ``event.<name>``).
Enter = Callable[[Profile, Journey, float, str, dict[str, ContextValue]], None]
#: What a points-expiry run's messages read as ``event.<name>``, with typical values.
POINTS_EXPIRING_FIELDS: Final[dict[str, Any]] = {
    "points": 200,
    "expires_at": 1767225600.0,
    "days_to_expiry": 30.0,
}


class TimeTriggers:
    def __init__(self, journeys: Sequence[Journey], default_time_zone: str) -> None:
        self.inactivity = tuple(j for j in journeys if j.inactivity_seconds is not None)
        self.yearly = tuple(j for j in journeys if j.anniversary is not None)
        self.points = tuple(j for j in journeys if j.points_expiring is not None)
        self.inactivity_ids = frozenset(j.id for j in self.inactivity)
        self.ids = frozenset(j.id for j in (*self.inactivity, *self.yearly, *self.points))
        self.default_time_zone = default_time_zone

    def traits_changed(self, state: JourneyState) -> None:
        """A trait a yearly date is read from may have changed: look again."""
        for journey in self.yearly:
            state.time_checks.pop(journey.id, None)

    def points_changed(self, state: JourneyState) -> bool:
        """The ledger may have changed: look again at when points next expire. True when
        some journey looks at points."""
        for journey in self.points:
            state.time_checks.pop(journey.id, None)
        return bool(self.points)

    def unarmed(self, state: JourneyState) -> bool:
        """An inactivity check is not armed yet."""
        return not state.time_checks.keys() >= self.inactivity_ids

    def fire(self, profile: Profile, now: float, enter: Enter) -> None:
        """Start the runs whose time has come by ``now``."""
        checks = profile.journeys.time_checks
        for journey in self.inactivity:
            assert journey.inactivity_seconds is not None
            check = checks.get(journey.id)
            last = profile.last_seen_at
            if check is None or check > now or last is None:
                continue
            due = last + journey.inactivity_seconds
            if due <= now:
                self._fire_inactivity(profile, journey, last, due, enter)
                del checks[journey.id]  # the next event arms it again
            else:
                checks[journey.id] = due  # the customer came back: look again later
        for journey in self.yearly:
            check = checks.get(journey.id)
            if check is None or check > now:
                continue
            profile.journeys.time_triggers_fired[journey.id] = check
            del checks[journey.id]
            if journey.when is None or journey.when(JourneyNames(profile, None)):
                assert journey.anniversary is not None
                enter(profile, journey, check, f"{journey.anniversary[0]}@{check:.0f}", {})
        for journey in self.points:
            check = checks.get(journey.id)
            if check is None or check > now or profile.points is None:
                continue
            del checks[journey.id]
            self._fire_points(profile, journey, profile.points, check, enter)

    def _fire_points(
        self, profile: Profile, journey: Journey, ledger: Ledger, check: float, enter: Enter
    ) -> None:
        assert journey.points_expiring is not None
        within, at_least = journey.points_expiring
        expiry = _next_expiry(ledger, profile.journeys.time_triggers_fired.get(journey.id))
        if expiry is None or expiry - within > check:
            return  # the ledger changed since it was armed; arming again finds the next
        profile.journeys.time_triggers_fired[journey.id] = expiry
        points = expiring_within(ledger, check, within)
        if points < at_least:
            return
        if journey.when is not None and not journey.when(JourneyNames(profile, None)):
            return
        context: dict[str, ContextValue] = {
            "points": points,
            "expires_at": expiry,
            "days_to_expiry": round((expiry - check) / DAY, 3),
        }
        enter(profile, journey, check, f"points_expiring@{expiry:.0f}", context)

    def _fire_inactivity(
        self, profile: Profile, journey: Journey, last_seen: float, due: float, enter: Enter
    ) -> None:
        state = profile.journeys
        if state.time_triggers_fired.get(journey.id) == last_seen:
            return
        state.time_triggers_fired[journey.id] = last_seen
        if journey.when is not None and not journey.when(JourneyNames(profile, None)):
            return
        enter(profile, journey, due, f"inactive@{due:.0f}", {})

    def arm(self, profile: Profile) -> float | None:
        """Arm the checks that are missing; the soonest one."""
        state = profile.journeys
        checks = state.time_checks
        if not checks.keys() <= self.ids:
            for journey_id in [j for j in checks if j not in self.ids]:
                del checks[journey_id]  # that journey left the rules (a reload)
        last = profile.last_seen_at
        for journey in self.inactivity:
            if journey.id not in checks and last is not None:
                assert journey.inactivity_seconds is not None
                if state.time_triggers_fired.get(journey.id) != last:
                    checks[journey.id] = last + journey.inactivity_seconds
        for journey in self.yearly:
            if journey.id not in checks:
                moment = next_anniversary(profile, journey, self.default_time_zone)
                if moment is not None:
                    checks[journey.id] = moment
        ledger = profile.points
        for journey in self.points:
            if journey.id not in checks and ledger is not None:
                assert journey.points_expiring is not None
                expiry = _next_expiry(ledger, state.time_triggers_fired.get(journey.id))
                if expiry is not None:
                    # never before the profile's clock: a window already open fires now
                    checks[journey.id] = max(expiry - journey.points_expiring[0], profile.as_of)
        return min(checks.values()) if checks else None


def _next_expiry(ledger: Ledger, after: float | None) -> float | None:
    """The soonest moment a lot with points left expires, later than ``after``."""
    floor = -1.0 if after is None else after
    return min(
        (lot.expires_at for lot in ledger.lots if lot.remaining > 0 and lot.expires_at > floor),
        default=None,
    )
