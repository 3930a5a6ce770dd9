"""A profile's size is bounded whatever a customer does; the bound is documented in docs/profile.md."""

import msgspec

from churn.model import ChurnLearner
from churn.tracker import ChurnConfig, ChurnTracker
from engine import Engine
from rules.loader import DEFAULT_RULES_DIR, load_rules
from state.stores import MemoryProfileStore
from state.stores.codec import ProfileCodec
from tests.builders import IMMEDIATE, added, at, event, ordered, viewed

#: docs/profile.md promises this many bytes of JSON at most per profile, and this many
#: stored (compressed, ``state/stores/codec.py``).
MAX_PROFILE_BYTES = 32 * 1024
MAX_STORED_BYTES = 8 * 1024


def test_a_hyperactive_customer_stays_within_the_documented_size() -> None:
    learner = ChurnLearner(min_labels=1)  # scores from the first labels on
    engine = Engine(
        MemoryProfileStore(),
        load_rules(DEFAULT_RULES_DIR),
        config=IMMEDIATE,
        churn=ChurnTracker(ChurnConfig(), learner.scorer),
    )
    for i in range(3000):
        when = at(i / 20)
        engine.apply(viewed(f"product-{i:06d}", category=f"category-{i % 50:02d}", when=when))
        engine.apply(added(f"cart-{i % 40:03d}", f"product-{i:06d}", when=when))
        if i % 3 == 0:
            engine.apply(ordered(f"order-{i:06d}", 10.0 + i, when=when))
            engine.apply(event("order.refunded", when=when, order_id=f"order-{i:06d}", amount=1.0))
        if i % 5 == 0:
            engine.apply(
                event(
                    "support.ticket_opened",
                    when=when,
                    ticket_id=f"ticket-{i:06d}",
                    priority="urgent",
                    is_complaint=True,
                )
            )
        if i % 50 == 0:
            engine.apply(event("customer.identified", when=when, anonymous=f"visitor-{i:06d}"))
    profile = engine.store.get("c1")
    assert profile is not None
    size = len(msgspec.json.encode(profile))
    stored = len(ProfileCodec().encode(profile))
    assert size <= MAX_PROFILE_BYTES, size
    assert stored <= MAX_STORED_BYTES, stored
    assert len(profile.recent_views) == 10
    assert len(profile.category_views) == 20
    assert len(profile.orders.recent) == 20
    assert len(profile.support.tickets) == 20
    assert len(profile.anonymous_ids) == 10
    assert len(profile.carts) <= 5
