"""The contract's bounds: how big a record, how deep its nesting, how large an amount.

Every bound is checked when a record is decoded, so nothing past it reaches a profile,
and each has a dead-letter reason that names it (docs/data.md, "Limits").

>>> nesting_depth(b'{"a": [1, {"b": "[[[["}]}')
3
>>> nesting_depth(b'"no containers"')
0
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import accumulate
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The largest amount of money one field may hold, in currency units (a billion): an
#: order total, a line price, a refund. Sums in a profile are integer cents, so lifetime
#: totals stay exact far past any real shop's figures.
MAX_AMOUNT: Final = 1_000_000_000.0
#: The largest quantity of one line item.
MAX_QUANTITY: Final = 100_000
#: The largest count a property such as ``results_count`` may hold.
MAX_COUNT: Final = 1_000_000_000
#: Objects and arrays nested deeper than this are refused (``too_deep``). The contract
#: itself needs four levels (envelope, properties, items, item); Segment messages a few
#: more. A fixed bound, checked before parsing, makes the outcome the same in every
#: runner whatever its own stack depth.
MAX_NESTING: Final = 32
#: A record (one line, one Kafka message) longer than this is refused (``too_large``)
#: unless the ``engine.max_record_bytes`` setting says otherwise.
DEFAULT_MAX_RECORD_BYTES: Final = 1 << 20
#: A refused record's dead letter keeps at most this many of its first bytes.
DEAD_LETTER_PREFIX_BYTES: Final = 4096

_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_DELTA: Final = tuple(1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256))


def nesting_depth(raw: bytes) -> int:
    """How deep objects and arrays nest in a JSON text (brackets inside strings ignored).

    Runs in C (a regular expression, a byte translation, ``accumulate``), linear in the
    record's length; for a text that is not JSON it is an estimate, which is enough: such
    a text is refused anyway.
    """
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, max(accumulate(map(_DELTA.__getitem__, brackets))))


def may_nest_too_deep(raw: bytes) -> bool:
    """A cheap first look: a record with at most ``MAX_NESTING`` opening brackets cannot
    nest deeper, whatever their order (two byte counts; almost every record stops here)."""
    return raw.count(b"{") + raw.count(b"[") > MAX_NESTING


@lru_cache(maxsize=1024)
def known_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows (``Asia/Shanghai``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
