"""The commit sequence (streams/checkpoint.py) with stand-ins for the broker and Redis that
note every call in one journal: what is acknowledged before what, and what a failure
leaves undone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec
import pytest

from engine import EngineConfig
from rules.loader import load_rules
from state.profile import Profile
from streams.checkpoint import Checkpoint, DeliveryFailed
from streams.offsets import TopicPartition
from streams.partitions import PartitionEngines, partition_of
from streams.table_stores import PartitionTable
from streams.topics import TopicNames
from tests.rules.journey_builders import rules_dir

NAMES = TopicNames.with_prefix("t.", "app")
PING = """
id: ping
trigger: {event: cart.item_added}
steps:
  - send: {channel: email, template: hello}
"""
POLICIES = "channels: {email: {templates: [hello], needs_consent: false}}\n"


class Journal:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []


class FakeOutbox:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.sent: list[tuple[str, int | None, bytes | None]] = []
        self._next: dict[TopicPartition, int] = {}
        self._pending: dict[TopicPartition, int] = {}
        self.fail = False

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> None:
        self.journal.calls.append(("send", topic))
        self.sent.append((topic, partition, value))
        tp = (topic, partition or 0)
        offset = self._next.get(tp, 0)
        self._next[tp] = offset + 1
        self._pending[tp] = offset

    def wait(self) -> dict[TopicPartition, int]:
        self.journal.calls.append(("wait", ""))
        if self.fail:
            raise DeliveryFailed("the broker went away")
        pending, self._pending = self._pending, {}
        return pending


class FakeClaims:
    def __init__(
        self, journal: Journal, sent_before: frozenset[str] | set[str] = frozenset()
    ) -> None:
        self.journal = journal
        self.sent_before = set(sent_before)

    def claim(self, owners: Sequence[tuple[str, str]], holding: str) -> list[bool]:
        self.journal.calls.append(("claim", ""))
        return [action_id not in self.sent_before for action_id, _ in owners]

    def prepare(self, changed: Sequence[tuple[str, Profile | None]]) -> object:
        return [key for key, _ in changed]

    def write_prepared(self, prepared: object, holding: str) -> None:
        self.journal.calls.append(("read model", ""))

    def forget(self, profile_keys: Sequence[str], holding: str) -> None:
        self.journal.calls.append(("forget", ""))

    def confirm(self, action_ids: Sequence[str], holding: str) -> None:
        self.journal.calls.append(("confirm", ""))
        self.sent_before.update(action_ids)

    def forget_written(self) -> None:
        self.journal.calls.append(("forget written", ""))


def _homed(partition: int) -> list[str]:
    """Customer ids whose profiles are homed on ``partition`` (of 2)."""
    return [f"c{n}" for n in range(40) if partition_of(f"c{n}", 2) == partition]


class Rig:
    """Two input partitions' engines, their tables in memory, the checkpoint over them."""

    def __init__(
        self,
        tmp_path: Path,
        sent_before: frozenset[str] | set[str] = frozenset(),
        lateness: float = 0.0,
    ) -> None:
        self.journal = Journal()
        self.outbox = FakeOutbox(self.journal)
        self.claims = FakeClaims(self.journal, sent_before)
        self.committed: list[dict[TopicPartition, int]] = []
        self.tables = {0: PartitionTable(None), 1: PartitionTable(None)}
        rules = load_rules(rules_dir(tmp_path, [PING], policies=POLICIES))
        self.engines = PartitionEngines(
            rules, config=EngineConfig(allowed_lateness_seconds=lateness), partitions=2
        )
        self.checkpoint = Checkpoint(
            NAMES, self.engines, self.outbox, self.claims, self._commit, self.tables
        )
        self.engines.add_sink(self.checkpoint)
        from state.stores.changelog import ChangelogProfileStore

        self.engines.set_store_factory(
            lambda p: ChangelogProfileStore(p, self.tables[p], self.checkpoint.writer(p))
        )

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.journal.calls.append(("commit", ""))
        self.committed.append(offsets)

    def read(self, partition: int, offset: int, number: int, minute: int = 0) -> None:
        """Customer ``number`` of those homed on ``partition`` adds to a cart."""
        customer = _homed(partition)[number]
        line = msgspec.json.encode(
            {
                "type": "cart.item_added",
                "event_id": f"e-{customer}-{minute}",
                "customer_id": customer,
                "occurred_at": f"2026-03-02T09:{minute:02}:00Z",
                "properties": {"cart_id": "k1", "product_id": "p1", "price": 30},
            }
        )
        position = (partition, offset, 0)
        self.checkpoint.read(position)
        handled = self.engines.handle(partition, line, "test", 1.9e9, position, offset)
        self.checkpoint.hold(line, customer.encode(), handled.dead_letters)

    def steps(self) -> list[str]:
        """The journal with runs of the same call folded, topics named."""
        folded: list[str] = []
        for call, topic in self.journal.calls:
            name = f"{call} {topic.removeprefix('t.')}".strip()
            if not folded or folded[-1] != name:
                folded.append(name)
        return folded


def test_outputs_are_acknowledged_before_the_changelog_and_offsets_are_committed_last(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    rig.read(0, 10, 0)
    rig.read(1, 20, 0)
    rig.checkpoint.commit()
    assert rig.steps() == [
        "claim",
        "read model",
        "send actions",
        "wait",
        "confirm",
        "send app-profiles-changelog",
        "wait",
        "send app-profiles-changelog",
        "wait",
        "commit",
    ]
    assert rig.committed == [{("t.events", 0): 11, ("t.events", 1): 21}]
    assert all(table.offset >= 0 and len(table) > 0 for table in rig.tables.values())


def test_each_changelog_partitions_last_write_goes_alone_after_the_rest_is_stored(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    rig.read(0, 0, 0)
    rig.checkpoint.commit()
    changelog = [i for i, (topic, _, _) in enumerate(rig.outbox.sent) if "changelog" in topic]
    waits = [i for i, (call, _) in enumerate(rig.journal.calls) if call == "wait"]
    sends = [i for i, (call, _) in enumerate(rig.journal.calls) if call == "send"]
    last_send = sends[changelog[-1]]
    assert waits[-2] < last_send < waits[-1], "the tail went out after the rest was acknowledged"
    tail = rig.outbox.sent[changelog[-1]][2]
    assert tail is not None
    assert b"read_through" in tail, "the partition's bookkeeping is the tail"


def test_every_batch_writes_its_changes_to_the_changelog_not_only_the_first(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    for batch in range(3):
        rig.read(0, batch, batch)
        assert rig.checkpoint.commit().changelog > 0, f"batch {batch}"
    assert rig.tables[0].offset == len([t for t, _, _ in rig.outbox.sent if "changelog" in t]) - 1


def test_a_record_the_broker_does_not_acknowledge_leaves_tables_and_offsets_as_they_were(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    rig.read(0, 10, 0)
    rig.outbox.fail = True
    with pytest.raises(DeliveryFailed):
        rig.checkpoint.commit()
    assert rig.committed == []
    assert [len(t) for t in rig.tables.values()] == [0, 0]
    assert ("confirm", "") not in rig.journal.calls, "a claim unconfirmed is published again"


def test_an_action_claimed_and_sent_before_is_not_published_again(tmp_path: Path) -> None:
    first = Rig(tmp_path / "first")
    first.read(0, 10, 0)
    first.checkpoint.commit()
    again = Rig(tmp_path / "again", sent_before=first.claims.sent_before)
    again.read(0, 10, 0)  # read again after a crash before the offset was committed
    done = again.checkpoint.commit()
    assert done.skipped == 1
    published = [
        msgspec.json.decode(v or b"{}") for t, _, v in again.outbox.sent if t == "t.actions"
    ]
    assert [r for r in published if r["record"] == "action"] == [], "milestones only"
    assert again.committed == [{("t.events", 0): 11}]


def test_an_event_waiting_for_the_watermark_holds_its_partition_offset_back(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, lateness=600.0)  # applied once a newer event is 10 min ahead
    rig.read(0, 10, 0, minute=0)
    rig.read(0, 11, 1, minute=5)
    rig.checkpoint.commit()
    assert rig.committed == [{("t.events", 0): 10}], "neither event is applied yet"
    rig.read(0, 12, 2, minute=12)  # the watermark passes minute 2: the first applies
    rig.checkpoint.commit()
    assert rig.committed[1:] == [{("t.events", 0): 11}]


def test_a_partition_given_away_keeps_nothing_to_commit(tmp_path: Path) -> None:
    rig = Rig(tmp_path, lateness=600.0)
    rig.read(0, 10, 0)
    rig.checkpoint.forget([0])
    rig.engines.release([0])
    rig.checkpoint.commit()
    assert rig.committed == []
    assert rig.checkpoint.offsets.waiting() == 0
