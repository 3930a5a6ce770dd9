"""Erasure and retention: removing a profile on request, or after it was inactive too long.

An ``erasure.requested`` event removes the customer's profile and everything the engine
keeps under its key or its visitors' keys. With ``privacy.retention_days`` set, a profile
without an event for that long is anonymised the same way, at the moment its retention
ends: by its review timer (``engine/firing.py``), or by the next event for it, whichever
comes first. Both give a ``profile_erased`` change per key and an audit record
(``state/audit.py``) that counts what went, with no personal data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import events as ev
from schemas.events import ANONYMOUS_PREFIX
from state.audit import ErasureAudit, ErasureReason
from state.changes import ProfileChange
from state.handoff import Forward
from state.policy import PrivacyPolicy
from state.profile import Profile
from state.reducers import contact_digest

if TYPE_CHECKING:
    from engine.core import Engine
    from engine.outputs import Output


class Retention:
    def __init__(self, engine: Engine, privacy: PrivacyPolicy) -> None:
        self.engine = engine
        #: Profiles are anonymised after this long without an event (None: never).
        self.seconds = privacy.retention_seconds
        #: Whether sends carry the customer's address (``privacy.keep_contacts``).
        self.keeps_contacts = privacy.keep_contacts
        #: How much of a ticket's subject the profile keeps (``privacy.keep_text_chars``).
        self.keep_text_chars = privacy.keep_text_chars
        key = privacy.key()
        #: Keyed digests of contact points, kept instead of the contacts (None: off).
        self.digest = None if key is None else contact_digest(key, privacy.contact_key_id)

    def due(self, profile: Profile) -> float | None:
        """When ``profile`` is anonymised for lack of activity; None: never. Activity is
        its newest event, or the arrival of a late one (``Profile.retained_from``)."""
        keep, last = self.seconds, profile.last_seen_at
        if keep is None or last is None:
            return None
        kept = profile.retained_from
        return (last if kept is None or kept < last else kept) + keep

    def live(self, key: str, ts: float, outputs: list[Output]) -> Profile | None:
        """The stored profile ``key``, unless its retention period ended before ``ts``: an
        event for a profile whose timer has not fired yet. It is anonymised first (as the
        timer would have done), and the event starts a new profile."""
        profile = self.engine.store.get(key)
        if profile is None or self.seconds is None:
            return profile
        retire = self.due(profile)
        if retire is None or retire > ts:
            return profile
        outputs.extend(self.retire(profile, retire))
        return None

    def retire(self, profile: Profile, at: float) -> list[Output]:
        """Anonymise a profile inactive for the retention period, as of that moment."""
        self.engine.stats.anonymised += 1
        return self.remove(profile.key, at, f"retention@{at:.0f}", "retention")

    def erase(self, event: ev.ErasureRequested, ts: float) -> list[Output]:
        """An erasure request: remove the profile here, or send it on to its home."""
        engine = self.engine
        key = engine.store.resolve(event.profile_key)
        home = engine.home
        if home is not None and not home(key):
            engine.stats.forwarded += 1
            return [Forward(to=key, event=event)]
        return self.remove(key, ts, event.event_id, "request", event)

    def remove(
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
        engine = self.engine
        store, home = engine.store, engine.home
        profile = store.get(key)
        store.delete(key)
        store.unlink_all(key)
        held = engine.identity.drop(key)
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
        timers = engine.timers.drop(keys)
        if profile is not None:
            if reason == "request":  # an anonymisation is counted once, as such (retire)
                engine.stats.erasures += 1
            for erased in [key, *sorted(keys - {key})]:
                outputs.append(ProfileChange.make("profile_erased", erased, None, None, at, cause))
        ledger = None if profile is None else profile.points
        outputs.append(
            ErasureAudit.make(
                reason,
                cause,
                at,
                profiles=0 if profile is None else 1,
                visitors=len(keys) - 1,
                journey_runs=0 if profile is None else len(profile.journeys.runs),
                churn_snapshots=0 if profile is None else len(profile.churn.pending),
                timers=timers,
                held_events=held,
                points_lots=0 if ledger is None else len(ledger.lots),
                points=0 if ledger is None else sum(max(lot.remaining, 0) for lot in ledger.lots),
            )
        )
        return outputs
