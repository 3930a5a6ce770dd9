"""Builders for contract events in tests: say what matters, default the rest."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from engine import EngineConfig
from schemas.events import EVENT_TYPES, Event
from state.changes import ProfileChange

#: Events applied as they arrive, for tests that feed them in time order.
IMMEDIATE = EngineConfig(allowed_lateness_seconds=0.0)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


def event(
    kind: str,
    when: datetime | None = None,
    customer: str | None = "c1",
    anonymous: str | None = None,
    event_id: str | None = None,
    **properties: Any,
) -> Event:
    record: dict[str, Any] = {
        "type": kind,
        "event_id": event_id or f"e{next(_ids)}",
        "occurred_at": (when or T0).isoformat(),
        "properties": properties,
    }
    if customer is not None:
        record["customer_id"] = customer
    if anonymous is not None:
        record["anonymous_id"] = anonymous
    return msgspec.convert(record, EVENT_TYPES[kind])  # type: ignore[return-value]


def viewed(product: str = "p1", category: str | None = "sneakers", **kw: Any) -> Event:
    return event("product.viewed", product_id=product, category=category, price=50.0, **kw)


def added(
    cart: str = "k1", product: str = "p1", quantity: int = 1, price: float = 30.0, **kw: Any
) -> Event:
    return event(
        "cart.item_added", cart_id=cart, product_id=product, quantity=quantity, price=price, **kw
    )


def removed(cart: str = "k1", product: str = "p1", quantity: int = 1, **kw: Any) -> Event:
    return event("cart.item_removed", cart_id=cart, product_id=product, quantity=quantity, **kw)


def ordered(order: str = "o1", total: float = 60.0, cart: str | None = None, **kw: Any) -> Event:
    props: dict[str, Any] = {"order_id": order, "total": total}
    if cart is not None:
        props["cart_id"] = cart
    return event("order.placed", **props, **kw)


def changes_of(outputs: Sequence[object]) -> list[ProfileChange]:
    """The profile changes among an engine's outputs (journey records left out)."""
    return [item for item in outputs if isinstance(item, ProfileChange)]
