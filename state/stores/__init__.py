"""Where profiles live: a small protocol and its backends (memory here; Faust and Redis at the edge)."""

from state.stores.base import PartitionMeta, ProfileStore
from state.stores.changelog import ChangelogProfileStore
from state.stores.memory import MemoryProfileStore

__all__ = ["ChangelogProfileStore", "MemoryProfileStore", "PartitionMeta", "ProfileStore"]
