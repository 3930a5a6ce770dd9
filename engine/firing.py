"""Firing what is due: profile reviews, journey moments, churn check-ins and labels.

Each profile keeps when its next review, journey moment and churn check-in are due; the
``Timers`` queue holds them for the engine. Here they are armed and fired. A review
brings the derived fields (RFM, lifecycle, tier) and the tags up to a moment, or
anonymises the profile once its retention period is over (``engine/retention.py``);
journey moments move runs (``rules/journey_runtime.py``); churn check-ins and labels come
from ``churn/tracker.py``. Profile changes any of them make are shown to the journeys,
which may start runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.fold import address_sends
from engine.outputs import Output
from engine.timers import CHURN, JOURNEY, REVIEW
from state.changes import ProfileChange
from state.derived import refresh_derived
from state.profile import Profile
from state.reducers import advance_profile_clock

if TYPE_CHECKING:
    from engine.core import Engine

#: A journey tag starting a journey that tags ...: rounds of firing at one moment, at most.
MAX_JOURNEY_ROUNDS = 16


class Firing:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- arming -------------------------------------------------------------------------------

    def arm_review(self, profile: Profile, already: float | None = None) -> None:
        """Queue the profile's next review unless that exact time is queued already.

        The next review is the earliest of the derived fields' next boundary (set by
        ``refresh_derived``), the first lapse of a tag and the end of the retention period.
        A tag's lapse is computed when the tag is added and at each review, the retention's
        end when the profile is first scheduled and at each review; later activity only
        pushes either further out, so a timer may fire early, finds nothing to change and
        re-arms.
        """
        engine = self.engine
        lapse = engine.rules.tags.next_review(profile)
        due = profile.next_review_at
        if lapse is not None and (due is None or lapse < due):
            due = lapse
        retire = engine.retention.due(profile)
        if retire is not None and (due is None or retire < due):
            due = retire
        profile.next_review_at = due
        engine.timers.arm(REVIEW, profile.key, due, already)

    def arm_journeys(self, profile: Profile, already: float | None) -> None:
        self.engine.timers.arm(JOURNEY, profile.key, profile.journeys.next_due_at, already)

    def arm_churn(self, profile: Profile, already: float | None) -> None:
        self.engine.timers.arm(CHURN, profile.key, profile.churn.next_due_at, already)

    def resume(self) -> None:
        """Queue the timers of every stored profile: after the store was filled from elsewhere
        (a worker recovering a partition), reviews and journey moments fire as before."""
        engine = self.engine
        store, timers = engine.store, engine.timers
        for key in store.sorted_keys():
            profile = store.get(key)
            if profile is None:
                continue
            retire = engine.retention.due(profile)
            if retire is not None and (
                profile.next_review_at is None or retire < profile.next_review_at
            ):
                profile.next_review_at = retire  # retention turned on, or shortened, since
            timers.arm(REVIEW, key, profile.next_review_at, None)
            timers.arm(JOURNEY, key, profile.journeys.next_due_at, None)
            if engine.churn is not None:
                timers.arm(CHURN, key, profile.churn.next_due_at, None)

    # --- firing -------------------------------------------------------------------------------

    def fire(self, profile: Profile, due: float, kind: int) -> list[Output]:
        """A timer of ``profile`` fell due; nothing if the profile has moved on since."""
        if kind == REVIEW:
            if profile.next_review_at != due:
                return []  # superseded by a later event
            return self.review_due(profile, due)
        if kind == JOURNEY:
            if profile.journeys.next_due_at == due:
                return self.fire_journeys(profile, due)
            return []
        if profile.churn.next_due_at == due and self.engine.churn is not None:
            fired = self.fire_churn(profile, due)
            self.engine.store.put(profile)
            return fired
        return []

    def fire_before(self, profile: Profile, ts: float, outputs: list[Output]) -> None:
        """Fire the profile's reviews and journey moments due before ``ts``, oldest first."""
        store = self.engine.store
        while True:
            review, moment = profile.next_review_at, profile.journeys.next_due_at
            if review is not None and review < ts and (moment is None or review <= moment):
                outputs.extend(self.review_due(profile, review))
                if store.get(profile.key) is None:
                    return  # anonymised
            elif moment is not None and moment < ts:
                outputs.extend(self.fire_journeys(profile, moment))
            else:
                return

    def catch_up(self, profile: Profile, ts: float) -> list[ProfileChange]:
        """Fire this profile's reviews due at or before ``ts``, oldest first."""
        changes: list[ProfileChange] = []
        stats = self.engine.stats
        while (due := profile.next_review_at) is not None and due <= ts:
            stats.reviews += 1
            changes.extend(self.review(profile, due))
            if profile.next_review_at is not None and profile.next_review_at <= due:
                raise AssertionError(f"review of {profile.key} at {due} did not move forward")
        return changes

    def review_due(self, profile: Profile, at: float, count: bool = True) -> list[Output]:
        """A review falls due: anonymise the profile if its retention period is over by
        then, else bring it up to ``at``."""
        engine = self.engine
        retire = engine.retention.due(profile)
        if retire is not None and retire <= at:
            return engine.retention.retire(profile, retire)
        if count:
            engine.stats.reviews += 1
        return list(self.review(profile, at))

    def review(self, profile: Profile, at: float) -> list[ProfileChange]:
        """Bring one profile's derived fields and tags up to ``at``."""
        engine = self.engine
        cause = f"review@{at:.0f}"
        advance_profile_clock(profile, at)
        changes = refresh_derived(profile, engine.policy, cause)
        changes.extend(engine.rules.tags.advance(profile, cause))
        self.arm_review(profile)
        self.journeys_see(changes, profile)
        engine.store.put(profile)
        return changes

    def journeys_see(self, changes: list[ProfileChange], profile: Profile) -> None:
        """Start the runs profile changes trigger (a tag added, a tier reached, a band move)."""
        journeys = self.engine.rules.journeys
        if changes and journeys.journeys:
            journey_due = profile.journeys.next_due_at
            journeys.on_changes(profile, changes)
            self.arm_journeys(profile, journey_due)

    def fire_journeys(self, profile: Profile, now: float) -> list[Output]:
        """Move the profile's runs up to ``now``; tags they set may start further runs."""
        engine = self.engine
        journeys = engine.rules.journeys
        keeps_contacts = engine.retention.keeps_contacts
        outputs: list[Output] = []
        for _ in range(MAX_JOURNEY_ROUNDS):
            fired = journeys.advance(profile, now, engine.coupons, engine.links)
            if keeps_contacts:
                fired = address_sends(profile, fired)
            outputs.extend(fired)
            changes = [item for item in fired if type(item) is ProfileChange]
            if not changes:
                break
            journeys.on_changes(profile, changes)
            due = profile.journeys.next_due_at
            if due is None or due > now:
                break
        due = profile.journeys.next_due_at
        if due is not None and due <= now:
            raise AssertionError(f"journeys of {profile.key} still due at {due} after firing")
        self.arm_journeys(profile, None)
        engine.store.put(profile)
        return outputs

    def fire_churn(self, profile: Profile, due: float) -> list[Output]:
        """Labels and a check-in of ``profile`` due at ``due``; journeys see risk changes."""
        churn = self.engine.churn
        assert churn is not None
        fired = churn.advance(profile, due)
        self.arm_churn(profile, None)
        self.journeys_see([item for item in fired if type(item) is ProfileChange], profile)
        return list(fired)

    def rescore(self, profile: Profile, at: float) -> list[Output]:
        """Score ``profile`` as of ``at`` (no snapshot); journeys see a band change."""
        engine = self.engine
        assert engine.churn is not None
        churn_due = profile.churn.next_due_at
        fired = engine.churn.rescore(profile, at)
        changes = [item for item in fired if type(item) is ProfileChange]
        self.arm_churn(profile, churn_due)
        self.journeys_see(changes, profile)
        engine.store.put(profile)
        return list(changes)
