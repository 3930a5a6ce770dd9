"""Browse reducers: product views (recent views, category affinity) and searches."""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable
from typing import Any, Final

from schemas import events as ev
from state.profile import (
    AFFINITY_WINDOW_DAYS,
    DAY,
    MAX_CATEGORIES,
    MAX_RECENT_VIEWS,
    Profile,
    View,
)
from state.reducers.bounds import enforce_category_bound
from state.reducers.clock import count_on

# --- browse -----------------------------------------------------------------------------------


def _view_order(view: View) -> tuple[float, str]:
    return view.at, view.product_id


def _product_viewed(profile: Profile, event: ev.ProductViewed, ts: float) -> None:
    props = event.properties
    views = profile.recent_views
    view = View(ts, props.product_id, props.category)
    if not views or (ts, props.product_id) >= _view_order(views[-1]):
        views.append(view)  # the usual case: views arrive in time order
    else:
        insort(views, view, key=_view_order)
    if len(views) > MAX_RECENT_VIEWS:
        del views[0]
    category = props.category
    if category is None:
        return
    day = int(ts // DAY)
    if day <= int(profile.as_of // DAY) - AFFINITY_WINDOW_DAYS:
        return  # older than the affinity window
    category_views = profile.category_views
    days = category_views.get(category)
    if days is None:
        category_views[category] = {day: 1}
        if len(category_views) > MAX_CATEGORIES:
            enforce_category_bound(profile)
    else:
        count_on(days, day)


def _search_performed(profile: Profile, event: ev.SearchPerformed, ts: float) -> None:
    """Searches are counted by ``_touch``; the query itself is not kept (it may hold PII)."""


#: The reducer of each event kind this module handles.
REDUCERS: Final[dict[type[Any], Callable[[Profile, Any, float], None]]] = {
    ev.ProductViewed: _product_viewed,
    ev.SearchPerformed: _search_performed,
}
