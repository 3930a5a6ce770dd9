"""The bounds on a profile's collections: one eviction rule per collection, shared by the
reducers and the identity merge (``state/identity.py``)."""

from __future__ import annotations

from state.profile import (
    MAX_CATEGORIES,
    MAX_RECENT_ORDERS,
    MAX_TICKETS,
    Orders,
    Profile,
    Support,
)

# --- bounds: one eviction rule per collection, shared with the identity merge -------------------


def enforce_category_bound(profile: Profile) -> None:
    """Keep the categories with the most views in the window."""
    views = profile.category_views
    while len(views) > MAX_CATEGORIES:
        weakest = min(views.items(), key=lambda item: (sum(item[1].values()), item[0]))[0]
        del views[weakest]


def enforce_order_bound(orders: Orders) -> None:
    """Keep the most recent orders for look-ups."""
    recent = orders.recent
    while len(recent) > MAX_RECENT_ORDERS:
        oldest = min(recent.values(), key=lambda r: (r.placed_at or 0.0, r.order_id))
        del recent[oldest.order_id]


def enforce_ticket_bound(support: Support) -> None:
    """Forget resolved tickets first, then the oldest."""
    tickets = support.tickets
    while len(tickets) > MAX_TICKETS:
        victim = min(
            tickets.values(),
            key=lambda t: (t.resolved_at is None, t.opened_at or 0.0, t.ticket_id),
        )
        del tickets[victim.ticket_id]
