"""A partition's local table, as the worker keeps it: it survives reopening, notes the
changelog offset it holds with the writes that bring it there, and keeps that note out of
the state."""

from __future__ import annotations

from pathlib import Path

import pytest

from state.profile import Profile
from state.stores import ChangelogProfileStore, PartitionMeta
from streams.table_stores import OFFSET_KEY, PartitionTable, Write


def _store(table: PartitionTable, writes: list[Write]) -> ChangelogProfileStore:
    """Partition 3's store over ``table``; its writes are collected in ``writes``."""
    return ChangelogProfileStore(3, table, lambda key, value: writes.append((key, value)))


@pytest.mark.parametrize("kind", ["rocksdb", "memory"])
def test_profiles_links_and_bookkeeping_come_back_from_the_table(tmp_path: Path, kind: str) -> None:
    table = PartitionTable(tmp_path / "p3.db" if kind == "rocksdb" else None)
    writes: list[Write] = []
    store = _store(table, writes)
    store.put(Profile(key="c1", customer_id="c1", tier="gold"))
    store.link("anon:a1", "c1")
    store.flush(PartitionMeta(read_through=41, newest=1.0e9))
    assert len(table) == 0, "the store writes through the changelog, never the table"
    table.apply(writes, offset=17)
    if kind == "rocksdb":
        table.close()
        table = PartitionTable(tmp_path / "p3.db")
    again = _store(table, [])
    profile = again.get("c1")
    assert profile is not None
    assert profile.tier == "gold"
    assert again.resolve("anon:a1") == "c1"
    assert again.meta.read_through == 41
    assert table.offset == 17


def test_the_changelog_offset_held_is_not_read_as_state(tmp_path: Path) -> None:
    table = PartitionTable(tmp_path / "p3.db")
    table.apply([(b"3:p:c1", b"{}")], offset=1234)
    assert list(table) == [b"3:p:c1"]
    assert dict(table.items()) == {b"3:p:c1": b"{}"}
    assert len(table) == 1
    with pytest.raises(KeyError):
        table[OFFSET_KEY]


def test_a_deleted_key_is_gone_and_the_offset_moves_with_the_delete(tmp_path: Path) -> None:
    table = PartitionTable(tmp_path / "p3.db")
    table.apply([(b"3:p:c1", b"{}")], offset=5)
    table.apply([(b"3:p:c1", None)], offset=6)
    assert b"3:p:c1" not in table
    assert table.offset == 6
    with pytest.raises(KeyError):
        del table[b"3:p:c1"]


def test_emptying_a_table_forgets_its_keys_and_offset(tmp_path: Path) -> None:
    table = PartitionTable(tmp_path / "p3.db")
    table.apply([(b"3:p:c1", b"{}")], offset=5)
    table.clear_all()
    assert (len(table), table.offset) == (0, -1)
    table.close()
    assert PartitionTable(tmp_path / "p3.db").offset == -1
