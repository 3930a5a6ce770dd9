"""The least per-event work CPython can do for a profile update, against the orjson baseline.

Usage: python bench/python_floor.py [--customers N] [--days D]

Not Rapport's engine: a single inlined loop that decodes each line with msgspec and
then does only the unavoidable minimum (a dedup set, a profile lookup, the per-kind
counter and clock, the recent-views list and category bucket of a view). No rules, no
timers, no carts, orders or support, no bounds. It shows how much of the replay
target (engine >= 0.25 x orjson) bare CPython leaves for everything else.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections import deque

import msgspec
import orjson

from schemas.decode import _FAST_DECODER
from state.profile import Profile, View
from streams.generator import GeneratorConfig, generate_stream


def decode_only(lines: list[bytes]) -> float:
    gc.collect()
    started = time.perf_counter()
    for line in lines:
        orjson.loads(line)
    return len(lines) / (time.perf_counter() - started)


def minimal_profile_loop(lines: list[bytes]) -> float:
    gc.collect()
    started = time.perf_counter()
    seen: set[str] = set()
    arrivals: deque[str] = deque()
    profiles: dict[str, Profile] = {}
    for line in lines:
        try:
            event = _FAST_DECODER.decode(line)
        except (msgspec.ValidationError, msgspec.DecodeError):  # malformed: skipped here
            continue
        event_id = event.event_id
        if event_id in seen:
            continue
        seen.add(event_id)
        arrivals.append(event_id)
        if len(arrivals) > 100_000:
            seen.discard(arrivals.popleft())
        ts = event.occurred_at.timestamp()
        key = event.profile_key
        profile = profiles.get(key)
        if profile is None:
            profile = profiles[key] = Profile(key=key)
        kind = event.type
        counts = profile.event_counts
        counts[kind] = counts.get(kind, 0) + 1
        if ts > profile.last_event_at.get(kind, 0.0):
            profile.last_event_at[kind] = ts
        if ts > profile.as_of:
            profile.as_of = ts
        if kind == "product.viewed":
            props = event.properties
            views = profile.recent_views
            views.append(View(ts, props.product_id, props.category))
            if len(views) > 20:
                del views[0]
            if props.category is not None:
                day = int(ts // 86_400)
                days = profile.category_views.setdefault(props.category, {})
                days[day] = days.get(day, 0) + 1
    return len(lines) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=7500)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    lines = list(generate_stream(GeneratorConfig(customers=args.customers, days=args.days, seed=1)))
    baseline = decode_only(lines)
    floor = minimal_profile_loop(lines)
    print(f"lines: {len(lines):,}")
    print(f"orjson decode only     : {baseline:10,.0f} lines/s  {1e6 / baseline:5.2f} µs/line")
    print(
        f"minimal profile loop   : {floor:10,.0f} lines/s  {1e6 / floor:5.2f} µs/line"
        f"  ratio {floor / baseline:.3f}"
    )


if __name__ == "__main__":
    main()
