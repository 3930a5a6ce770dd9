"""A partition's profile table on the worker's own disk, and how it is rebuilt.

Each input partition's table (what ``ChangelogProfileStore`` reads at takeover and
writes through) lives in the worker's local store and in the compacted changelog topic
``<app id>-profiles-changelog``, partition for partition. The changelog is the truth; the
local copy is never ahead of it, because a batch's writes reach the local copy only
after the broker has acknowledged them.

``rocksdb`` (the default) keeps each partition in its own RocksDB database,
``<data dir>/profiles-<partition>.db``, together with the changelog offset it holds. A
batch's writes and that offset go in one RocksDB write batch: a worker killed in the
middle of it (``kill -9``) leaves either all of them or none, never a database that
claims more than it holds. A restart on the same disk then reads only the changelog
written after that offset. ``memory`` keeps the table in the process and reads the whole
changelog at every takeover.

If a database holds an offset the changelog does not reach (the topic was deleted and
made again), it is not trusted: it is emptied and rebuilt from the changelog, with a
warning, instead of refusing to start.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("rapport.tables")

StoreKind = Literal["rocksdb", "memory"]
#: The changelog offset a database holds, kept next to the table's keys.
OFFSET_KEY = b"__rapport\0changelog_offset__"

#: Reads go to memory (profiles are decoded once, at takeover), so a small block cache
#: does; each partition has its own database.
ROCKSDB_OPTIONS: dict[str, int] = {
    "block_cache_size": 16 * 1024**2,
    "write_buffer_size": 16 * 1024**2,
    "max_write_buffer_number": 2,
}

#: One table write: key, and value (None deletes the key).
Write = tuple[bytes, bytes | None]


class PartitionTable(MutableMapping[bytes, bytes]):
    """One partition's local table: raw keys to raw values, and the changelog offset held.

    Reading is the mapping; writing goes through ``apply`` (a batch of writes and the
    changelog offset they bring the table to, stored together)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: dict[bytes, bytes] = {}
        self._db: Any = None
        #: The highest changelog offset whose write the table holds (-1: none).
        self.offset = -1
        if path is not None:
            self._db = _open(path)
            raw = self._db.get(OFFSET_KEY)
            self.offset = -1 if raw is None else int(raw)

    def apply(self, writes: Iterable[Write], offset: int) -> None:
        """Store ``writes`` and note ``offset`` as held, all or nothing."""
        if self._db is None:
            for key, value in writes:
                if value is None:
                    self._memory.pop(key, None)
                else:
                    self._memory[key] = value
        else:
            import rocksdict

            batch = rocksdict.WriteBatch(raw_mode=True)
            for key, value in writes:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            batch.put(OFFSET_KEY, str(offset).encode())
            self._db.write(batch)
        self.offset = max(self.offset, offset)

    def clear_all(self) -> None:
        """Forget everything (the changelog is read again from its start)."""
        if self._db is not None and self.path is not None:
            self._db.close()
            shutil.rmtree(self.path, ignore_errors=True)
            self._db = _open(self.path)
        self._memory.clear()
        self.offset = -1

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # --- the mapping (reads) --------------------------------------------------------------

    def __getitem__(self, key: bytes) -> bytes:
        if self._db is None:
            return self._memory[key]
        value = self._db.get(key)
        if value is None or key == OFFSET_KEY:
            raise KeyError(key)
        return bytes(value)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.apply([(key, value)], self.offset)

    def __delitem__(self, key: bytes) -> None:
        if key not in self:
            raise KeyError(key)
        self.apply([(key, None)], self.offset)

    def __iter__(self) -> Iterator[bytes]:
        for key, _ in self.scan():
            yield key

    def __len__(self) -> int:
        return sum(1 for _ in self.scan())

    def scan(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value, in one pass."""
        if self._db is None:
            yield from list(self._memory.items())
            return
        for key, value in self._db.items():
            if key != OFFSET_KEY:
                yield bytes(key), bytes(value)

    def items(self) -> Any:
        return list(self.scan())


def _open(path: Path) -> Any:
    import rocksdict

    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(ROCKSDB_OPTIONS["write_buffer_size"])
    options.set_max_write_buffer_number(ROCKSDB_OPTIONS["max_write_buffer_number"])
    table = rocksdict.BlockBasedOptions()
    table.set_block_cache(rocksdict.Cache(ROCKSDB_OPTIONS["block_cache_size"]))
    options.set_block_based_table_factory(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    return rocksdict.Rdict(str(path), options=options)


def table_path(data_dir: Path, kind: StoreKind, partition: int) -> Path | None:
    return data_dir / f"profiles-{partition}.db" if kind == "rocksdb" else None
