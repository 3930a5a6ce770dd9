"""Erasure and retention in the engine: what is removed, what is kept, and the audit."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

from churn.model import NOT_READY
from churn.tracker import ChurnConfig, ChurnTracker
from engine import Engine, Output
from rules.loader import load_rules
from state.audit import ErasureAudit
from state.policy import PrivacyPolicy, ProfilePolicy
from state.reducers import contact_digest
from state.stores import MemoryProfileStore
from tests.builders import IMMEDIATE, added, at, changes_of, event, ordered, viewed
from tests.rules.journey_builders import consent, rules_dir, sends

DAY = 86_400.0


def _engine(tmp_path: Path, retention_days: int = 0) -> Engine:
    policy = ProfilePolicy(privacy=PrivacyPolicy(retention_days=retention_days))
    return Engine(
        MemoryProfileStore(),
        load_rules(rules_dir(tmp_path)),
        policy=policy,
        config=IMMEDIATE,
        churn=ChurnTracker(ChurnConfig(), lambda: NOT_READY),
    )


def _audits(outputs: Sequence[object]) -> list[ErasureAudit]:
    return [item for item in outputs if isinstance(item, ErasureAudit)]


def _engine_state_text(engine: Engine) -> str:
    """Everything the engine holds in memory, as text: profiles, links, timers, held events."""
    store = engine.store
    parts = [repr(sorted(store.sorted_keys()))]
    parts += [msgspec.json.encode(store.get(key)).decode() for key in store.sorted_keys()]
    parts += [
        repr(getattr(store, "_links", {})),
        repr(engine.timers.queue),
        repr(engine.identity.parked),
    ]
    parts += [repr(engine.identity.early), repr(engine.order.pending)]
    return "\n".join(parts)


def test_an_erasure_leaves_nothing_of_the_customer_in_the_engine(tmp_path: Path) -> None:
    engine = _engine(tmp_path, retention_days=1095)
    engine.apply(viewed(customer=None, anonymous="visitor-9", when=at(0)))
    engine.apply(
        event(
            "customer.registered",
            customer="cust-42",
            anonymous="visitor-9",
            email="jane@example.com",
            when=at(0, 1),
        )
    )
    engine.apply(consent(customer="cust-42", when=at(0, 2)))
    engine.apply(ordered("o1", customer="cust-42", when=at(0, 3)))
    engine.apply(added("k1", customer="cust-42", when=at(0, 4)))  # a cart run starts
    engine.apply(event("customer.registered", customer="other", when=at(0, 5)))
    assert "cust-42" in _engine_state_text(engine)

    outputs = engine.apply(event("customer.erasure_requested", customer="cust-42", when=at(1)))

    state = _engine_state_text(engine)
    for trace in ("cust-42", "visitor-9", "jane"):
        assert trace not in state
    assert "other" in state
    assert [(c.kind, c.profile_key) for c in changes_of(outputs)] == [
        ("profile_erased", "cust-42"),
        ("profile_erased", "anon:visitor-9"),
    ]
    (audit,) = _audits(outputs)
    assert (audit.reason, audit.profiles, audit.visitors, audit.journey_runs) == (
        "request",
        1,
        1,
        1,
    )
    assert audit.churn_snapshots == 1
    assert audit.timers >= 2
    record = msgspec.json.encode(audit).decode()
    for trace in ("cust-42", "visitor-9", "jane"):
        assert trace not in record
    # The cart reminder that was due an hour later does not go out.
    assert sends(engine.advance(at(3).timestamp()), status=None) == []


def test_an_erasure_of_an_unknown_customer_is_still_audited(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    outputs = engine.apply(event("customer.erasure_requested", customer="nobody", when=at(1)))
    assert changes_of(outputs) == []
    (audit,) = _audits(outputs)
    assert (audit.reason, audit.profiles) == ("request", 0)


def test_a_profile_inactive_for_the_retention_period_is_anonymised_then(tmp_path: Path) -> None:
    engine = _engine(tmp_path, retention_days=30)
    engine.apply(viewed(customer=None, anonymous="v1", when=at(0)))
    engine.apply(ordered("o1", customer="c1", when=at(0)))
    engine.apply(ordered("o2", customer="c2", when=at(0)))
    engine.apply(viewed(customer="c2", when=at(20)))  # c2 stays active longer

    early = engine.advance(at(29).timestamp())
    assert _audits(early) == []
    outputs = engine.advance(at(31).timestamp())

    assert engine.store.get("c1") is None
    assert engine.store.get("anon:v1") is None
    assert engine.store.get("c2") is not None
    audits = _audits(outputs)
    assert [a.reason for a in audits] == ["retention", "retention"]
    assert sorted(a.at for a in audits) == [at(30).timestamp()] * 2
    assert engine.stats.anonymised == 2
    assert {c.profile_key for c in changes_of(outputs) if c.kind == "profile_erased"} == {
        "c1",
        "anon:v1",
    }
    later = engine.advance(at(51).timestamp())
    assert [a.reason for a in _audits(later)] == ["retention"]
    assert engine.store.get("c2") is None


def test_a_customer_back_after_the_retention_period_starts_a_new_profile(tmp_path: Path) -> None:
    engine = _engine(tmp_path, retention_days=30)
    engine.apply(ordered("o1", customer="c1", when=at(0)))
    outputs = engine.apply(ordered("o2", customer="c1", when=at(45)))  # before any timer ran
    assert [a.at for a in _audits(outputs)] == [at(30).timestamp()]
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.orders.count == 1
    assert profile.first_seen_at == at(45).timestamp()


def test_retention_zero_keeps_profiles_forever(tmp_path: Path) -> None:
    engine = _engine(tmp_path, retention_days=0)
    engine.apply(ordered("o1", customer="c1", when=at(0)))
    assert _audits(engine.advance(at(5000).timestamp())) == []
    assert engine.store.get("c1") is not None


def _with_store(tmp_path: Path, store: MemoryProfileStore, retention_days: int) -> Engine:
    policy = ProfilePolicy(privacy=PrivacyPolicy(retention_days=retention_days))
    return Engine(store, load_rules(rules_dir(tmp_path)), policy=policy, config=IMMEDIATE)


def test_retention_turned_on_later_reaches_the_profiles_already_stored(tmp_path: Path) -> None:
    store = MemoryProfileStore()
    before = _with_store(tmp_path, store, retention_days=0)
    before.apply(ordered("o1", customer="c1", when=at(0)))
    before.apply(ordered("o2", customer="c2", when=at(40)))
    after = _with_store(tmp_path, store, retention_days=30)  # a restart with retention on
    after.resume()
    outputs = after.advance(at(45).timestamp())
    assert [(a.reason, a.at) for a in _audits(outputs)] == [("retention", at(30).timestamp())]
    assert store.get("c1") is None
    assert store.get("c2") is not None


def test_an_event_for_a_profile_past_its_retention_anonymises_it_first(tmp_path: Path) -> None:
    """A dormant customer logs in as an active visitor before any timer ran: the old
    history goes, the visit stays."""
    store = MemoryProfileStore()
    before = _with_store(tmp_path, store, retention_days=0)
    before.apply(ordered("o1", customer="c1", when=at(0)))
    before.apply(viewed("p7", customer=None, anonymous="v1", when=at(44)))
    after = _with_store(tmp_path, store, retention_days=30)  # no resume: no timers queued
    outputs = after.apply(event("customer.identified", customer="c1", anonymous="v1", when=at(45)))
    assert [a.reason for a in _audits(outputs)] == ["retention"]
    profile = store.get("c1")
    assert profile is not None
    assert profile.orders.count == 0
    assert [v.product_id for v in profile.recent_views] == ["p7"]


KEY = "contact-key-for-tests-" + "k" * 16


def _contacts_engine(tmp_path: Path, keep_contacts: bool, key: str | None = KEY) -> Engine:
    privacy = PrivacyPolicy(keep_contacts=keep_contacts, contact_key=key)
    policy = ProfilePolicy(privacy=privacy)
    return Engine(
        MemoryProfileStore(), load_rules(rules_dir(tmp_path)), policy=policy, config=IMMEDIATE
    )


def _cart_reminder(engine: Engine) -> list[Output]:
    outputs = engine.apply(
        event("customer.registered", email="Jo@Example.com", phone="+44 20 7946 0000")
    )
    outputs += engine.apply(consent(when=at(0, 1)))
    outputs += engine.apply(added("k1", when=at(0, 2)))
    outputs += engine.advance(at(0, 4).timestamp())
    return outputs


@pytest.mark.parametrize("keep", [False, True])
def test_sends_carry_the_address_only_when_contacts_are_kept(tmp_path: Path, keep: bool) -> None:
    engine = _contacts_engine(tmp_path, keep_contacts=keep)
    (reminder,) = sends(_cart_reminder(engine))
    profile = engine.store.get("c1")
    assert profile is not None
    if keep:
        assert reminder.address == "Jo@Example.com"
        assert (profile.trait("email"), profile.trait("phone")) == (
            "Jo@Example.com",
            "+44 20 7946 0000",
        )
    else:
        assert reminder.address is None
        assert "email" not in profile.traits
        assert "phone" not in profile.traits
    assert profile.trait("email_digest") == contact_digest(KEY.encode(), "k1")("jo@example.com")


def test_contact_digests_are_keyed_and_name_their_key(tmp_path: Path) -> None:
    engine = _contacts_engine(tmp_path, keep_contacts=False)
    _cart_reminder(engine)
    profile = engine.store.get("c1")
    assert profile is not None
    digest = str(profile.trait("email_digest"))
    assert digest.startswith("k1:")
    unkeyed = hashlib.sha256(b"jo@example.com").hexdigest()
    assert unkeyed not in digest  # a dictionary of hashed addresses cannot undo it
    other = _contacts_engine(tmp_path / "other", keep_contacts=False, key="another-key-" + "o" * 24)
    _cart_reminder(other)
    again = other.store.get("c1")
    assert again is not None
    assert again.trait("email_digest") != digest


def test_without_a_contact_key_no_digest_is_kept(tmp_path: Path) -> None:
    engine = _contacts_engine(tmp_path, keep_contacts=False, key=None)
    _cart_reminder(engine)
    profile = engine.store.get("c1")
    assert profile is not None
    assert not {"email_digest", "phone_digest", "email", "phone"} & set(profile.traits)


def test_a_short_contact_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        PrivacyPolicy(contact_key="short")
