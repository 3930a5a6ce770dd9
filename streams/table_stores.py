"""Where the worker keeps a partition's table state on its own disk: the profiles table's
Faust store, and per partition the key-value view ``ChangelogProfileStore`` reads and writes.

``rocksdb`` (the default) keeps each partition in its own RocksDB database under the data
directory (rocksdict, as Faust opens it). Faust remembers there the last changelog offset
each database holds, so a restart on the same disk reads only the changelog written since;
a partition new to this worker is rebuilt from its changelog. ``memory`` keeps everything
in the process and rebuilds every partition from its changelog at each start.

Faust's RocksDB store finds a write's partition from the event being processed
(``current_event()``); the engines write after a batch of events or on a timer, so
``RocksPartition`` names the partition and goes straight to its database.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, MutableMapping
from typing import Any, Literal

#: Faust keeps the changelog offset a database holds under this key, next to ours.
FAUST_OFFSET_KEY = b"__faust\0offset__"
StoreKind = Literal["rocksdb", "memory"]

#: Our reads go to memory (profiles are decoded once, at takeover): a small block cache
#: does. Faust's defaults (2 GiB cache, 64 MiB write buffers) are sized for reading
#: through the store on every event, and each partition has its own database.
ROCKSDB_OPTIONS: dict[str, int] = {
    "block_cache_size": 16 * 1024**2,
    "write_buffer_size": 16 * 1024**2,
    "max_write_buffer_number": 2,
}


def faust_store_url(kind: StoreKind) -> str:
    return f"{kind}://"


def table_options(kind: StoreKind) -> dict[str, Any] | None:
    """The ``options`` of the profiles table for a store of this kind."""
    return dict(ROCKSDB_OPTIONS) if kind == "rocksdb" else None


class RocksPartition(MutableMapping[bytes, bytes]):
    """One partition's RocksDB database, as a mapping of raw keys to raw values.

    ``open_db`` returns the database (Faust opens it on first use and closes it when the
    partition is revoked); it is asked on every call, never kept.
    """

    def __init__(self, open_db: Callable[[], Any]) -> None:
        self._open_db = open_db

    def __getitem__(self, key: bytes) -> bytes:
        value = self._open_db().get(key)
        if value is None or key == FAUST_OFFSET_KEY:
            raise KeyError(key)
        return bytes(value)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._open_db().put(key, value)

    def __delitem__(self, key: bytes) -> None:
        db = self._open_db()
        if db.get(key) is None:
            raise KeyError(key)
        db.delete(key)

    def __iter__(self) -> Iterator[bytes]:
        for key in self._open_db().keys():  # noqa: SIM118 (iter() fails in raw mode)
            if key != FAUST_OFFSET_KEY:
                yield bytes(key)

    def items(self) -> ItemsView[bytes, bytes]:
        return _ScannedItems(self)

    def scan(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value in key order, in one pass over the database."""
        for key, value in self._open_db().items():
            if key != FAUST_OFFSET_KEY:
                yield bytes(key), bytes(value)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _ScannedItems(ItemsView[bytes, bytes]):
    """``items()`` of a ``RocksPartition``: one scan, not a read per key."""

    _mapping: RocksPartition

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return self._mapping.scan()
