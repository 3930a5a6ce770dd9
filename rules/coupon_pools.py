"""Coupon pools: pre-issued codes read at load time, each handed out once.

A pool is a text file of codes, one per line; blank lines and ``#`` comments are skipped.
``read_pool`` checks the file and names the line of every problem. ``CouponLedger``
hands the codes out in file order and remembers which are gone, across rule reloads.

>>> ledger = CouponLedger()
>>> codes = ("SPRING-0001", "SPRING-0002")
>>> ledger.claim("spring", codes), ledger.claim("spring", codes), ledger.claim("spring", codes)
('SPRING-0001', 'SPRING-0002', None)
>>> ledger.remaining("spring", codes)
0

Engines that run side by side (one per partition in the worker) each take a disjoint
share of every pool, chosen by a stable hash of the code, and keep the codes they used
with their state (``used`` / ``restore``), so no code is handed out twice:

>>> shares = [CouponLedger(share=(i, 2)) for i in range(2)]
>>> codes = tuple(f"SPRING-{n:04}" for n in range(6))
>>> taken = [[s.claim("spring", codes) for _ in range(6)] for s in shares]
>>> [len([c for c in t if c]) for t in taken], sorted(c for t in taken for c in t if c) == list(codes)
([4, 2], True)
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Final

CODE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{3,63}")


class PoolFileError(ValueError):
    """A pool file that cannot be used, with the line at fault."""


def read_pool(path: Path) -> tuple[str, ...]:
    """The codes of ``path`` in file order; raise ``PoolFileError`` naming ``path:line``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PoolFileError(f"no such coupon file: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PoolFileError(f"cannot read coupon file {path}: {error}") from None
    codes: list[str] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        code = raw.split("#", 1)[0].strip()
        if not code:
            continue
        if not CODE.fullmatch(code):
            raise PoolFileError(
                f"{path}:{number}: {code!r} is not a coupon code; expected 4-64 letters, "
                "digits, '-' or '_', starting with a letter or digit"
            )
        if code in first_line:
            raise PoolFileError(
                f"{path}:{number}: duplicate code {code!r} (first on line {first_line[code]})"
            )
        first_line[code] = number
        codes.append(code)
    return tuple(codes)


class CouponLedger:
    """Which pool codes are handed out. One per engine; it outlives rule reloads.

    Claims follow the engine's event-time order, so a replay of the same input hands the
    same code to the same action. A pool whose file changes on a reload goes on with the
    first code of the new file not handed out yet.
    """

    def __init__(self, share: tuple[int, int] | None = None) -> None:
        """``share``: (index, count) — take only the codes whose stable hash modulo
        ``count`` is ``index``; None takes every code."""
        self._share = share
        self._used: set[str] = set()
        #: pool -> (the codes it was last read with, index of the first code not yet used)
        self._cursor: dict[str, tuple[tuple[str, ...], int]] = {}

    def claim(self, pool: str, codes: tuple[str, ...]) -> str | None:
        """The next unused code of ``pool``, now used; None when the pool is empty."""
        index = self._advance(pool, codes)
        if index == len(codes):
            return None
        code = codes[index]
        self._used.add(code)
        self._cursor[pool] = (codes, index + 1)
        return code

    def remaining(self, pool: str, codes: tuple[str, ...]) -> int:
        index = self._advance(pool, codes)
        return sum(1 for code in codes[index:] if self._available(code))

    def used(self) -> list[str]:
        """Every code handed out, sorted: what ``restore`` takes back after a restart."""
        return sorted(self._used)

    def restore(self, used: list[str]) -> None:
        self._used = set(used)
        self._cursor.clear()

    def _available(self, code: str) -> bool:
        if code in self._used:
            return False
        if self._share is None:
            return True
        index, count = self._share
        return zlib.crc32(code.encode()) % count == index

    def _advance(self, pool: str, codes: tuple[str, ...]) -> int:
        known, index = self._cursor.get(pool, (codes, 0))
        if known is not codes:  # reloaded: start over, skipping what is gone
            index = 0
        while index < len(codes) and not self._available(codes[index]):
            index += 1
        self._cursor[pool] = (codes, index)
        return index
