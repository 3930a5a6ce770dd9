"""Stored profiles: compressed against a dictionary made from the schema, every format
ever written still read, and each released dictionary frozen."""

from __future__ import annotations

import hashlib
from importlib.resources import files

import msgspec
import pytest

from engine import Engine
from rules.loader import DEFAULT_RULES_DIR, load_rules
from state.profile import Profile
from state.stores import ChangelogProfileStore, MemoryProfileStore
from state.stores.changelog import into
from state.stores.codec import CURRENT, ProfileCodec
from tests.builders import IMMEDIATE, added, at, event, ordered, viewed

#: SHA-256 of each released dictionary: a stored profile needs the very bytes it was
#: compressed with, so a released dictionary never changes (a new one is a new version).
RELEASED = {
    1: "dbf12e62deaed125eead74c3e2ecce9ac635a09f3be03ea7e6ac4b99058b4b56",
    2: "0d4f0727ad9dbe0cc6a7fe25ffb118def824f34a4f4e93b6771564d95aece8e4",
}


def _lived_in() -> Profile:
    engine = Engine(MemoryProfileStore(), load_rules(DEFAULT_RULES_DIR), config=IMMEDIATE)
    for day in range(40):
        engine.apply(viewed(f"sku-{day}", category="shoes", when=at(day)))
        engine.apply(added(f"k{day // 7}", f"sku-{day}", when=at(day, 1)))
        if day % 7 == 6:
            engine.apply(ordered(f"o{day}", 30.0 + day, when=at(day, 2)))
    engine.apply(event("support.ticket_opened", when=at(40), ticket_id="t1", priority="high"))
    profile = engine.store.get("c1")
    assert profile is not None
    return profile


def test_a_stored_profile_comes_back_equal_and_smaller() -> None:
    codec, profile = ProfileCodec(), _lived_in()
    stored = codec.encode(profile)
    assert stored[:2] == bytes((0, CURRENT))
    assert msgspec.json.encode(codec.decode(stored)) == msgspec.json.encode(profile)
    assert len(stored) * 3 < len(msgspec.json.encode(profile))


def test_profiles_stored_as_plain_json_before_compression_are_still_read() -> None:
    profile = _lived_in()
    table = {b"0:p:c1": msgspec.json.encode(profile)}  # a table an older worker wrote
    store = ChangelogProfileStore(0, table, into(table))
    again = store.get("c1")
    assert again is not None
    assert msgspec.json.encode(again) == msgspec.json.encode(profile)
    again.tags.append("moved")
    store.put(again)
    store.flush()
    assert table[b"0:p:c1"][:1] == b"\x00"  # written back compressed once it changes


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (b"\x00\x63abc", "dictionary 99"),
        (b"garbage", "not a stored profile"),
        (b"", "not a stored profile"),
    ],
)
def test_a_value_in_no_known_format_is_refused_with_what_it_is(
    stored: bytes, expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        ProfileCodec().decode(stored)


def test_released_dictionaries_never_change() -> None:
    for version, digest in RELEASED.items():
        data = files("state.stores").joinpath(f"profile-{version}.zdict").read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"dictionary {version} changed"
    assert max(RELEASED) == CURRENT
