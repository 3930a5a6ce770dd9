"""The embedded profile store: plain dicts in one process (replay, tests, the demo).

>>> from state.profile import Profile
>>> store = MemoryProfileStore()
>>> store.put(Profile(key="c1"))
>>> store.link("anon:a1", "c1")
>>> store.resolve("anon:a1"), len(store)
('c1', 1)
"""

from __future__ import annotations

from collections.abc import Iterator

from state.profile import Profile
from state.stores.base import PartitionMeta


class MemoryProfileStore:
    """Profiles and links in two dicts; keeps nothing elsewhere, so there is never
    anything to stage or flush.

    >>> store = MemoryProfileStore()
    >>> store.put(Profile(key="c1")); store.link("anon:a1", "c1")
    >>> store.resolve("anon:a1"), [p.key for p in store.profiles()], store.stage()
    ('c1', ['c1'], [])
    """

    def __init__(self) -> None:
        self._profiles: dict[str, Profile] = {}
        self._links: dict[str, str] = {}
        self.meta = PartitionMeta()

    def get(self, key: str) -> Profile | None:
        return self._profiles.get(key)

    def put(self, profile: Profile) -> None:
        self._profiles[profile.key] = profile

    def delete(self, key: str) -> None:
        self._profiles.pop(key, None)

    def resolve(self, key: str) -> str:
        return self._links.get(key, key)

    def link(self, anonymous_key: str, customer_key: str) -> None:
        self._links[anonymous_key] = customer_key

    def linked_to(self, customer_key: str) -> list[str]:
        """The anonymous keys routed to ``customer_key``."""
        return [k for k, v in self._links.items() if v == customer_key]

    def unlink_all(self, customer_key: str) -> None:
        for key in self.linked_to(customer_key):
            del self._links[key]

    def sorted_keys(self) -> Iterator[str]:
        return iter(sorted(self._profiles))

    def profiles(self) -> Iterator[Profile]:
        return iter(self._profiles.values())

    def __len__(self) -> int:
        return len(self._profiles)

    def stage(self) -> list[tuple[str, Profile | None]]:
        return []

    def flush(self, meta: PartitionMeta | None = None) -> int:
        if meta is not None:
            self.meta = meta
        return 0

    def encoded_bytes(self) -> int:
        return 0
