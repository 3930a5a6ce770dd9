"""Journeys that start with time alone: after a spell without any event from the
customer (``inactivity``), and on a yearly date (``anniversary: birthday``).

Each such journey keeps one check per profile (``JourneyState.time_checks``): the
moment it next has to look. The runtime fires the checks that are due when the
watermark passes them, in time order with everything else, and re-arms them.

>>> TimeTriggers((), "UTC").ids
frozenset()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rules.anniversaries import next_anniversary
from rules.journey_names import JourneyNames
from rules.journey_steps import Journey
from state.journey_runs import JourneyState
from state.profile import Profile

#: Starts a run: (profile, journey, the moment, the trigger's name for the run id).
Enter = Callable[[Profile, Journey, float, str], None]


class TimeTriggers:
    def __init__(self, journeys: Sequence[Journey], default_time_zone: str) -> None:
        self.inactivity = tuple(j for j in journeys if j.inactivity_seconds is not None)
        self.yearly = tuple(j for j in journeys if j.anniversary is not None)
        self.inactivity_ids = frozenset(j.id for j in self.inactivity)
        self.ids = frozenset(j.id for j in (*self.inactivity, *self.yearly))
        self.default_time_zone = default_time_zone

    def traits_changed(self, state: JourneyState) -> None:
        """A trait a yearly date is read from may have changed: look again."""
        for journey in self.yearly:
            state.time_checks.pop(journey.id, None)

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
                enter(profile, journey, check, f"{journey.anniversary[0]}@{check:.0f}")

    def _fire_inactivity(
        self, profile: Profile, journey: Journey, last_seen: float, due: float, enter: Enter
    ) -> None:
        state = profile.journeys
        if state.time_triggers_fired.get(journey.id) == last_seen:
            return
        state.time_triggers_fired[journey.id] = last_seen
        if journey.when is not None and not journey.when(JourneyNames(profile, None)):
            return
        enter(profile, journey, due, f"inactive@{due:.0f}")

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
        return min(checks.values()) if checks else None
