from engine import Engine
from rules.loader import RuleSet
from state.audit import ErasureAudit, request_digest
from state.stores import MemoryProfileStore
from tests.builders import IMMEDIATE, added, at, changes_of, event, ordered, viewed


def _engine() -> Engine:
    return Engine(MemoryProfileStore(), RuleSet.empty(), config=IMMEDIATE)


def test_identification_moves_the_visitors_cart_into_the_customers_profile() -> None:
    engine = _engine()
    engine.apply(added("k1", "p1", customer=None, anonymous="a1", when=at(0)))
    engine.apply(event("customer.identified", customer="c1", anonymous="a1", when=at(0, 1)))
    assert engine.store.get("anon:a1") is None
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.open_cart is not None
    assert profile.open_cart.cart_id == "k1"


def test_visitor_events_after_identification_reach_the_customer() -> None:
    engine = _engine()
    engine.apply(event("customer.identified", customer="c1", anonymous="a1", when=at(0)))
    engine.apply(viewed("p5", customer=None, anonymous="a1", when=at(0, 1)))
    profile = engine.store.get("c1")
    assert profile is not None
    assert [v.product_id for v in profile.recent_views] == ["p5"]


def test_redelivered_event_is_skipped_and_counted() -> None:
    engine = _engine()
    order = ordered("o1", event_id="same")
    engine.apply(order)
    assert engine.apply(order) == []
    assert engine.stats.duplicates == 1
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.orders.count == 1


def test_event_older_than_the_watermark_is_counted_late_but_still_applied() -> None:
    engine = _engine()
    engine.apply(viewed(when=at(1)))
    engine.apply(ordered("o1", when=at(0)))
    assert engine.stats.late == 1
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.orders.count == 1


def test_erasure_removes_the_profile_and_its_links() -> None:
    engine = _engine()
    engine.apply(event("customer.identified", customer="c1", anonymous="a1", when=at(0)))
    request = event("customer.erasure_requested", customer="c1", when=at(1), event_id="rq1")
    changes = engine.apply(request)
    erased = [(c.kind, c.profile_key) for c in changes_of(changes)]
    assert erased == [("profile_erased", "c1"), ("profile_erased", "anon:a1")]
    (audit,) = [item for item in changes if isinstance(item, ErasureAudit)]
    assert (audit.profiles, audit.visitors, audit.cause) == (1, 1, request_digest("rq1"))
    assert len(changes) == 3
    assert len(engine.store) == 0
    assert engine.store.resolve("anon:a1") == "anon:a1"
