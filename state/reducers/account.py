"""Account reducers: registration and traits, consent, identification, contact points
(kept as keyed digests, or kept outright with ``privacy.keep_contacts``)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any, Final

from schemas import events as ev
from state.profile import (
    MAX_ANONYMOUS_IDS,
    Profile,
    Stamped,
)
from state.reducers.clock import newer
from state.reducers.messages import readdressed

#: Makes the digest of a contact (an email or phone as given): ``privacy.contact_key``'s.
ContactDigest = Callable[[str], str]


def contact_digest(key: bytes, key_id: str) -> ContactDigest:
    """A keyed pseudonym for an email or phone: ``<key id>:<hex HMAC-SHA256>`` of the
    trimmed, lower-cased value. Without the key nobody can test a guess against it (an
    unkeyed hash of an address is undone by hashing a list of addresses).

    >>> digest = contact_digest(b"k" * 32, "k1")
    >>> digest(" Ann@Example.com ") == digest("ann@example.com"), digest("a@b.c")[:3]
    (True, 'k1:')
    """

    def make(value: str) -> str:
        mac = hmac.new(key, value.strip().lower().encode(), hashlib.sha256)
        return f"{key_id}:{mac.hexdigest()}"

    return make


# --- account ----------------------------------------------------------------------------------


def _set_trait(profile: Profile, name: str, value: str | bool | None, ts: float, eid: str) -> None:
    if newer(profile.traits.get(name), ts, eid):
        profile.traits[name] = Stamped(value, ts, eid)


def _apply_traits(profile: Profile, traits: ev.Traits, ts: float, event_id: str) -> None:
    if traits.time_zone is not None:
        _set_trait(profile, "time_zone", traits.time_zone, ts, event_id)
    if traits.birthday is not None:
        _set_trait(profile, "birthday", traits.birthday.isoformat(), ts, event_id)
    if traits.locale is not None:
        _set_trait(profile, "locale", traits.locale, ts, event_id)
    if traits.country is not None:
        _set_trait(profile, "country", traits.country, ts, event_id)


#: Channel -> the trait that holds its address, when contacts are kept in plain form.
ADDRESS_TRAITS: Final = {"email": "email", "sms": "phone", "whatsapp": "phone"}


def keep_contact_digests(
    profile: Profile, event: ev.Event, ts: float, digest: ContactDigest
) -> None:
    """Keep the keyed digests of the email and phone of a registration or update
    (``privacy.contact_key`` set), last writer wins like every trait."""
    traits = event.properties
    if not isinstance(traits, ev.Traits):
        return
    if traits.email is not None:
        _set_trait(profile, "email_digest", digest(traits.email), ts, event.event_id)
    if traits.phone is not None:
        _set_trait(profile, "phone_digest", digest(traits.phone), ts, event.event_id)


def keep_contacts(profile: Profile, event: ev.Event, ts: float) -> None:
    """Keep the plain email and phone of a registration or update (``privacy.keep_contacts``
    on), last writer wins like the digests."""
    traits = event.properties
    if not isinstance(traits, ev.Traits):
        return
    if traits.email is not None:
        _set_trait(profile, "email", traits.email.strip(), ts, event.event_id)
    if traits.phone is not None:
        _set_trait(profile, "phone", traits.phone.strip(), ts, event.event_id)


def _customer_registered(profile: Profile, event: ev.CustomerRegistered, ts: float) -> None:
    if profile.registered_at is None or ts < profile.registered_at:
        profile.registered_at = ts
    _apply_traits(profile, event.properties, ts, event.event_id)


def _customer_updated(profile: Profile, event: ev.CustomerUpdated, ts: float) -> None:
    _apply_traits(profile, event.properties, ts, event.event_id)
    readdressed(profile, event.properties, ts)


def _consent_updated(profile: Profile, event: ev.ConsentUpdated, ts: float) -> None:
    props = event.properties
    if newer(profile.consent.get(props.channel), ts, event.event_id):
        profile.consent[props.channel] = Stamped(props.granted, ts, event.event_id)


def remember_anonymous_id(profile: Profile, anonymous_id: str) -> None:
    if anonymous_id not in profile.anonymous_ids:
        profile.anonymous_ids.append(anonymous_id)
        profile.anonymous_ids.sort()
        del profile.anonymous_ids[MAX_ANONYMOUS_IDS:]


def _customer_identified(profile: Profile, event: ev.CustomerIdentified, ts: float) -> None:
    """The merge of the anonymous profile is the store's job; here we only record the link."""
    if event.anonymous_id is not None:
        remember_anonymous_id(profile, event.anonymous_id)


def _erasure_requested(profile: Profile, event: ev.ErasureRequested, ts: float) -> None:
    """Erasure removes the whole profile; the engine does that before reducers run."""


#: The reducer of each event kind this module handles.
REDUCERS: Final[dict[type[Any], Callable[[Profile, Any, float], None]]] = {
    ev.CustomerRegistered: _customer_registered,
    ev.CustomerUpdated: _customer_updated,
    ev.ConsentUpdated: _consent_updated,
    ev.CustomerIdentified: _customer_identified,
    ev.ErasureRequested: _erasure_requested,
}
