"""Which read-model fields a batch sends (``ReadModelWrites``): only those changed since
the batch before, which may still be in flight when the next one is prepared."""

from __future__ import annotations

from state.profile import Profile
from streams.redis_io import ReadModelWrites


def _fields(writes: ReadModelWrites, profile: Profile) -> dict[str, str] | None:
    (prepared,), _ = writes.prepare([("c1", profile)])
    return prepared[1]


def test_the_first_write_of_a_profile_sends_every_field_and_the_next_only_what_changed() -> None:
    writes = ReadModelWrites("p:")
    profile = Profile(key="c1", customer_id="c1", tier="gold")
    first = _fields(writes, profile)
    assert first is not None
    assert first["tier"] == "gold"
    assert len(first) > 10
    profile.lifecycle = "active"
    assert _fields(writes, profile) == {"lifecycle": "active"}


def test_a_field_that_changes_back_in_the_next_batch_is_sent_again() -> None:
    """Batch K-1 sets the tier, batch K sets it back, and K is prepared before K-1 is
    written: K must still send the tier, or Redis keeps K-1's."""
    writes = ReadModelWrites("p:")
    profile = Profile(key="c1", customer_id="c1", tier="member")
    _fields(writes, profile)
    profile.tier = "gold"
    assert _fields(writes, profile) == {"tier": "gold"}  # batch K-1, not yet written
    profile.tier = "member"
    assert _fields(writes, profile) == {"tier": "member"}  # batch K


def test_a_deleted_profile_is_written_whole_when_it_comes_back() -> None:
    writes = ReadModelWrites("p:")
    profile = Profile(key="c1", customer_id="c1")
    _fields(writes, profile)
    (deleted,), _ = writes.prepare([("c1", None)])
    assert deleted == ("p:c1", None)
    again = _fields(writes, profile)
    assert again is not None
    assert len(again) > 10
