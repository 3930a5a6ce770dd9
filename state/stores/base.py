"""The profile store protocol the engine is written against, and what a store that keeps
its profiles elsewhere (a table) records about where it stands.

Every implementation passes one contract test (``tests/state/test_store_contract.py``):
the engine, the runners and the metrics use a store only through this protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import msgspec

from state.profile import Profile


class PartitionMeta(msgspec.Struct, frozen=True):
    """Where a partition's stored state stands."""

    #: The highest input offset whose record was handled; records at or below it that are
    #: read again after a restart may already be in the stored profiles.
    read_through: int = -1
    #: The engine's clock: newest event time and the latest moment it was advanced to.
    newest: float | None = None
    advanced: float | None = None
    #: Pool coupon codes this partition's engine has handed out.
    coupons_used: list[str] = []


class ProfileStore(Protocol):
    """Profiles by key, plus the anonymous-id → customer-id links made by identification."""

    def get(self, key: str) -> Profile | None:
        """The profile stored under ``key``, or None."""

    def put(self, profile: Profile) -> None:
        """Store ``profile`` under ``profile.key`` (a no-op for stores that hand out live objects)."""

    def delete(self, key: str) -> None:
        """Forget the profile under ``key``, if any."""

    def resolve(self, key: str) -> str:
        """The key events for ``key`` should update: the customer's key for a linked visitor."""

    def link(self, anonymous_key: str, customer_key: str) -> None:
        """From now on route ``anonymous_key`` to ``customer_key``."""

    def unlink_all(self, customer_key: str) -> None:
        """Forget every link that points at ``customer_key``."""

    def sorted_keys(self) -> Iterator[str]:
        """Every profile key, in sorted order."""
        ...

    def profiles(self) -> Iterator[Profile]:
        """Every profile held, in no particular order."""
        ...

    def __len__(self) -> int:
        """The number of profiles held."""
        ...

    # --- writing through, for stores that keep profiles elsewhere --------------------------

    #: Where the stored state stands, as last written or recovered (a new store: nothing).
    meta: PartitionMeta

    def stage(self) -> list[tuple[str, Profile | None]]:
        """The profiles changed since the last call that are not yet written through (None
        for one deleted); empty for a store that keeps nothing elsewhere."""
        ...

    def flush(self, meta: PartitionMeta | None = None) -> int:
        """Write what changed through, then ``meta``; how many writes."""
        ...

    def encoded_bytes(self) -> int:
        """Bytes of what the store keeps elsewhere, as last written (0: nothing)."""
        ...
