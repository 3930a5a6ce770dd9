"""Yearly journey triggers (birthdays, sign-up anniversaries): the next moment a yearly date
trait comes round, at a local time in the customer's zone (29 February on 28 February in
other years).

>>> from datetime import datetime
>>> moment = _next_yearly("1990-03-05", datetime(2026, 4, 1).timestamp(), "UTC", 9, 0)
>>> datetime.fromtimestamp(moment, UTC).isoformat()
'2027-03-05T09:00:00+00:00'
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from rules.journey_steps import Journey
from state.profile import Profile


def next_anniversary(profile: Profile, journey: Journey, default_zone: str) -> float | None:
    """The first yearly moment after both the trait was set and the last firing."""
    assert journey.anniversary is not None
    trait, hour, minute = journey.anniversary
    stamped = profile.traits.get(trait)
    if stamped is None or not isinstance(stamped.value, str):
        return None
    after = max(stamped.at, profile.journeys.time_triggers_fired.get(journey.id, stamped.at))
    zone = profile.trait("time_zone")
    zone_name = zone if isinstance(zone, str) else default_zone
    return _next_yearly(stamped.value, after, zone_name, hour, minute)


@lru_cache(maxsize=65_536)
def _next_yearly(
    date_text: str, after: float, zone_name: str, hour: int, minute: int
) -> float | None:
    """The first moment of that month and day, at that local time, later than ``after``."""
    month, day = int(date_text[5:7]), int(date_text[8:10])
    zone = ZoneInfo(zone_name)
    year = datetime.fromtimestamp(after, UTC).year
    for candidate in (year, year + 1):
        moment = _yearly_moment(candidate, month, day, hour, minute, zone)
        if moment > after:
            return moment
    return None


def _yearly_moment(
    year: int, month: int, day: int, hour: int, minute: int, zone: ZoneInfo
) -> float:
    if month == 2 and day == 29 and not calendar.isleap(year):
        day = 28
    return datetime(year, month, day, hour, minute, tzinfo=zone).timestamp()
