"""The profile as other services read it: a flat, small projection for the Redis read model.

The worker writes one Redis hash per profile (``<prefix>profile:<profile key>``) with the
fields below, every value a string, whenever the profile changes. The projection is pure,
so replay, the worker and the tests all agree on it; the Redis I/O is in
``streams/redis_io.py``. Field meanings are in ``docs/operations.md`` (read model).

>>> from state.profile import Profile, Stamped
>>> p = Profile(key="c1", customer_id="c1", tier="gold", lifecycle="active", tags=["vip"])
>>> p.consent["email"] = Stamped(True, 1.0, "e1")
>>> fields = read_model_fields(p)
>>> fields["tier"], fields["tags"], fields["consent"], fields["open_cart_value"]
('gold', '["vip"]', '{"email":true}', '0.00')
"""

from __future__ import annotations

import msgspec

from state.loyalty import points_at
from state.profile import Profile

#: Every field the read model carries, in a fixed order (docs and tests list them).
READ_MODEL_FIELDS: tuple[str, ...] = (
    "customer_id",
    "tier",
    "lifecycle",
    "rfm_segment",
    "rfm_recency",
    "rfm_frequency",
    "rfm_monetary",
    "churn_risk",
    "churn_risk_at",
    "churn_band",
    "tags",
    "consent",
    "open_cart_id",
    "open_cart_value",
    "orders_count",
    "revenue",
    "last_order_at",
    "points_balance",
    "points_pending",
    "points_next_expiry_at",
    "points_next_expiry",
    "sentiment_recent",
    "sentiment_average",
    "open_tickets",
    "as_of",
)

_ENCODER = msgspec.json.Encoder()


def _time(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def read_model_fields(profile: Profile) -> dict[str, str]:
    """The read-model hash of ``profile``: strings only, empty where nothing is known.

    ``churn_risk`` (a probability, 4 decimals) and ``churn_band`` (``low``/``high``) are
    empty until the churn model scores the profile; ``churn_risk_at`` is the moment the
    risk is as of (a snapshot, a check-in, or a refresh every ``churn.refresh``).
    The ``points_*`` fields are empty without a ledger and, like the rest, as of
    ``as_of``: pending points become spendable, and lots expire, with time alone.
    ``sentiment_*`` (-1..1, 4 decimals) are empty until the customer has written something.
    """
    cart = profile.open_cart
    points = None if profile.points is None else points_at(profile.points, profile.as_of)
    consent = {channel: bool(s.value) for channel, s in sorted(profile.consent.items())}
    return {
        "customer_id": profile.customer_id or "",
        "tier": profile.tier,
        "lifecycle": profile.lifecycle,
        "rfm_segment": profile.rfm.segment,
        "rfm_recency": str(profile.rfm.recency),
        "rfm_frequency": str(profile.rfm.frequency),
        "rfm_monetary": str(profile.rfm.monetary),
        "churn_risk": "" if profile.churn.risk is None else f"{profile.churn.risk:.4f}",
        "churn_risk_at": _time(profile.churn.risk_at),
        "churn_band": profile.churn.band or "",
        "tags": _ENCODER.encode(profile.tags).decode(),
        "consent": _ENCODER.encode(consent).decode(),
        "open_cart_id": cart.cart_id if cart else "",
        "open_cart_value": f"{cart.value if cart else 0.0:.2f}",
        "orders_count": str(profile.orders.count),
        "revenue": f"{profile.orders.revenue_cents / 100:.2f}",
        "last_order_at": _time(profile.orders.last_order_at),
        "points_balance": "" if points is None else str(points.balance),
        "points_pending": "" if points is None else str(points.pending),
        "points_next_expiry_at": "" if points is None else _time(points.next_expiry_at),
        "points_next_expiry": "" if points is None else str(points.next_expiry_points),
        "sentiment_recent": _score(profile.support.sentiment_recent),
        "sentiment_average": _score(profile.support.sentiment_average),
        "open_tickets": str(len(profile.support.open_tickets)),
        "as_of": _time(profile.as_of),
    }
