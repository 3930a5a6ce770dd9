"""A partition's profiles kept in RocksDB, as the worker keeps them, survive reopening."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rocksdict

from state.profile import Profile
from state.stores.changelog import ChangelogProfileStore, PartitionMeta, into
from streams.table_stores import FAUST_OFFSET_KEY, RocksPartition


def _open(path: Path) -> Any:
    return rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))


def _store(db: Any, writes: list[tuple[bytes, bytes | None]]) -> ChangelogProfileStore:
    """Partition 3's store over ``db``; each write is noted in ``writes`` and stored."""
    table = RocksPartition(lambda: db)
    store_locally = into(table)

    def write(key: bytes, value: bytes | None) -> None:
        writes.append((key, value))
        store_locally(key, value)

    return ChangelogProfileStore(3, table, write)


def test_profiles_links_and_bookkeeping_come_back_after_the_database_is_reopened(
    tmp_path: Path,
) -> None:
    db = _open(tmp_path / "p3")
    writes: list[tuple[bytes, bytes | None]] = []
    store = _store(db, writes)
    store.put(Profile(key="c1", customer_id="c1", tier="gold"))
    store.link("anon:a1", "c1")
    store.flush(PartitionMeta(read_through=41, newest=1.0e9))
    db.close()

    again = _store(_open(tmp_path / "p3"), [])
    profile = again.get("c1")
    assert profile is not None
    assert profile.tier == "gold"
    assert again.resolve("anon:a1") == "c1"
    assert again.meta.read_through == 41
    assert len(writes) == 3  # every local write also went to the changelog


def test_fausts_changelog_offset_in_the_same_database_is_not_read_as_state(
    tmp_path: Path,
) -> None:
    db = _open(tmp_path / "p3")
    db[FAUST_OFFSET_KEY] = b"1234"
    db[b"3:p:c1"] = b"{}"
    partition = RocksPartition(lambda: db)
    assert list(partition) == [b"3:p:c1"]
    assert dict(partition.items()) == {b"3:p:c1": b"{}"}
    assert len(partition) == 1
    with pytest.raises(KeyError):
        partition[FAUST_OFFSET_KEY]


def test_a_deleted_profile_is_gone_from_the_database(tmp_path: Path) -> None:
    db = _open(tmp_path / "p3")
    store = _store(db, [])
    store.put(Profile(key="c1"))
    store.flush()
    store.delete("c1")
    store.flush()
    assert b"3:p:c1" not in RocksPartition(lambda: db)
    with pytest.raises(KeyError):
        del RocksPartition(lambda: db)[b"3:p:c1"]
