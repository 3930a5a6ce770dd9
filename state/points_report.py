"""The loyalty block of the reports: what the shop owes in points and how they move.

>>> from state.loyalty import Ledger, Lot
>>> ledger = Ledger(lots=[Lot("order:o1", 0.0, 100.0, 120, 120)], earned=120)
>>> report = points_report([(ledger, 10.0)], Decimal("0.01"))
>>> report["outstanding"], report["liability"], report["redemption_rate"]
(120, 1.2, 0.0)
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from state.loyalty import Ledger, points_at

_TOTALS = ("earned", "redeemed", "expired", "clawed_back", "shortfall", "refused", "merged")


def points_report(ledgers: Iterable[tuple[Ledger, float]], point_value: Decimal) -> dict[str, Any]:
    """Over ``(ledger, its moment)`` pairs: members, outstanding and pending points, the
    liability (outstanding x point value), lifetime totals, and the redemption rate
    (points redeemed per point earned)."""
    members = outstanding = pending = 0
    totals = dict.fromkeys(_TOTALS, 0)
    for ledger, at in ledgers:
        members += 1
        view = points_at(ledger, at)
        outstanding += view.balance
        pending += view.pending
        for name in _TOTALS:
            totals[name] += getattr(ledger, name)
    earned = totals["earned"]
    return {
        "members": members,
        "outstanding": outstanding,
        "pending": pending,
        "liability": float(outstanding * point_value),
        **totals,
        "redemption_rate": round(totals["redeemed"] / earned, 4) if earned else 0.0,
        "expiry_rate": round(totals["expired"] / earned, 4) if earned else 0.0,
    }
