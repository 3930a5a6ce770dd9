"""The profile store protocol the engine is written against."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from state.profile import Profile


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
