"""Durations as marketers write them: ``90s``, ``15m``, ``1h``, ``30d``, ``2w``.

>>> parse_duration("36h")
129600.0
>>> parse_duration("soon")
Traceback (most recent call last):
...
ValueError: bad duration 'soon': expected a whole number and a unit s, m, h, d or w, like '30d'
"""

from __future__ import annotations

import re
from typing import Final

_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION: Final = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``text``."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(
            f"bad duration {text!r}: expected a whole number and a unit s, m, h, d or w, like '30d'"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]
