"""The contract every ``ProfileStore`` passes (as river's ``check_estimator`` does for
estimators): one list of checks, run against each implementation.

A new store is added to ``STORES``; a store that keeps its profiles elsewhere also says
how to open it again over what it wrote, and must then give back the same state.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from state.profile import Profile
from state.stores import ChangelogProfileStore, MemoryProfileStore, PartitionMeta, ProfileStore
from state.stores.changelog import into

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StoreUnderTest:
    make: Callable[[], ProfileStore]
    #: Open a store again over what the last one made wrote (None: it keeps nothing).
    reopen: Callable[[], ProfileStore] | None = None


def _memory() -> StoreUnderTest:
    return StoreUnderTest(MemoryProfileStore)


def _changelog() -> StoreUnderTest:
    table: dict[bytes, bytes] = {}
    return StoreUnderTest(
        lambda: ChangelogProfileStore(3, table, into(table)),
        lambda: ChangelogProfileStore(3, table, into(table)),
    )


STORES = {"memory": _memory, "changelog": _changelog}


@pytest.fixture(params=sorted(STORES))
def subject(request: pytest.FixtureRequest) -> StoreUnderTest:
    return STORES[request.param]()


def _profile(key: str, orders: int = 0) -> Profile:
    profile = Profile(key=key, customer_id=None if key.startswith("anon:") else key)
    profile.orders.count = orders
    return profile


def test_a_new_store_is_empty_and_resolves_every_key_to_itself(subject: StoreUnderTest) -> None:
    store = subject.make()
    assert store.get("c1") is None
    assert len(store) == 0
    assert list(store.sorted_keys()) == []
    assert list(store.profiles()) == []
    assert store.resolve("anon:a1") == "anon:a1"
    assert store.stage() == []
    assert store.meta == PartitionMeta()
    assert store.encoded_bytes() == 0


def test_a_profile_put_is_got_back_counted_listed_and_deleted(subject: StoreUnderTest) -> None:
    store = subject.make()
    for key in ("c2", "anon:a9", "c1"):
        store.put(_profile(key, orders=len(key)))
    got = store.get("c1")
    assert got is not None
    assert (got.key, got.orders.count) == ("c1", 2)
    assert len(store) == 3
    assert list(store.sorted_keys()) == ["anon:a9", "c1", "c2"]
    assert sorted(p.key for p in store.profiles()) == ["anon:a9", "c1", "c2"]
    store.delete("c2")
    store.delete("never-there")
    assert store.get("c2") is None
    assert len(store) == 2


def test_a_changed_profile_is_kept_changed(subject: StoreUnderTest) -> None:
    store = subject.make()
    store.put(_profile("c1"))
    profile = store.get("c1")
    assert profile is not None
    profile.orders.count = 7
    store.put(profile)
    again = store.get("c1")
    assert again is not None
    assert again.orders.count == 7


def test_links_route_visitors_until_their_customer_is_unlinked(subject: StoreUnderTest) -> None:
    store = subject.make()
    store.link("anon:a1", "c1")
    store.link("anon:a2", "c1")
    store.link("anon:b1", "c2")
    assert [store.resolve(k) for k in ("anon:a1", "anon:a2", "anon:b1")] == ["c1", "c1", "c2"]
    store.unlink_all("c1")
    assert [store.resolve(k) for k in ("anon:a1", "anon:a2", "anon:b1")] == [
        "anon:a1",
        "anon:a2",
        "c2",
    ]


def test_flush_records_where_the_state_stands(subject: StoreUnderTest) -> None:
    store = subject.make()
    store.put(_profile("c1"))
    meta = PartitionMeta(read_through=41, newest=1.0, advanced=0.5, coupons_used=["X1"])
    assert store.flush(meta) >= 0
    assert store.meta == meta
    assert store.stage() == []  # nothing changed since
    assert store.encoded_bytes() >= 0


def test_a_store_opened_again_over_what_it_wrote_has_the_same_state(
    subject: StoreUnderTest,
) -> None:
    if subject.reopen is None:
        pytest.skip("keeps nothing elsewhere")
    store = subject.make()
    for key in ("c1", "c2", "anon:a1"):
        store.put(_profile(key, orders=3))
    store.link("anon:a2", "c1")
    store.delete("c2")
    meta = PartitionMeta(read_through=9)
    store.flush(meta)
    again = subject.reopen()
    assert list(again.sorted_keys()) == list(store.sorted_keys())
    for key in store.sorted_keys():
        assert msgspec.json.encode(again.get(key)) == msgspec.json.encode(store.get(key))
    assert again.resolve("anon:a2") == "c1"
    assert again.meta == meta
    assert again.encoded_bytes() == store.encoded_bytes() > 0


def test_no_code_outside_the_stores_package_asks_which_store_it_has() -> None:
    """Stores are used through the protocol: an ``isinstance`` on a store class elsewhere
    is a store feature the protocol is missing."""
    asking = re.compile(r"isinstance\([^)]*\b\w*Store\b")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("schemas", "state", "rules", "churn", "engine", "agents", "streams")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "stores" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if asking.search(line)
    ]
    assert found == []
