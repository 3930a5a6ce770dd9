"""The commit sequence of the worker's data plane: where an input offset is committed.

The data plane reads a batch of input records and hands each to its partition's engine;
what the engines give is held here, and ``commit`` makes it durable in this order:

1. **Claim** each action's id in Redis (``SET NX``); an id claimed and sent before is
   dropped, not published again.
2. **Read model**: the profiles the batch changed are written to Redis (the delivery
   stage checks consent and erasure there, and must see them as of the action or later);
   erased customers' claims are deleted.
3. **Outputs**: actions, milestones, profile changes, identity handoffs, churn labels,
   audit records and dead letters are produced, and the producer is flushed: the broker
   has acknowledged every one.
4. **Confirm** the claims: a later claim of the same id will not publish it again.
5. **Changelog**: the profile table writes (and each partition's bookkeeping: how far
   input was read, the engine's clock) are produced and acknowledged; each partition's
   last write goes alone, after the others are stored, because a broker that reports a
   partition's end as the first offset of its last batch + 1 (Tansu does) would
   otherwise hide the tail from the next owner's rebuild.
6. **Local table**: the same writes go to the partition's local table with the changelog
   offset they bring it to, in one write (``streams/table_stores.py``).
7. **Offsets**: each input partition is committed up to its first record not dealt with
   (``streams/offsets.py``; an event waiting for the watermark holds its partition back).

Outputs are acknowledged before the changelog that records their events as applied: a
crash in between reads those events again, applies them again (the stored profiles do
not know them) and gives the same outputs with the same ids, which the claims drop. The
other way round, a crash would leave events applied whose outputs never went out.

Kafka transactions would make steps 3–7 one atomic write, but the broker the project
tests on (Tansu) shows aborted records to ``read_committed`` readers, so this is
at-least-once with deterministic ids and the applied-event marks (docs/decisions.md).

Nothing here touches Kafka or Redis directly: the producer and the claims are passed
in (``Outbox`` and ``Claims``), and the unit tests drive the sequence with stand-ins.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from churn.tracker import ChurnLabel
from engine import Output
from engine.outputs import stream_of
from rules.actions import Action, JourneyMilestone
from schemas.decode import DeadLetter
from schemas.limits import DEAD_LETTER_PREFIX_BYTES
from state.audit import ErasureAudit
from state.changes import ProfileChange
from state.handoff import Internal, encode_internal, routing_key
from state.profile import Profile
from state.stores.changelog import ChangelogWriter
from streams.offsets import InputOffsets, TopicPartition
from streams.partitions import PartitionEngines
from streams.table_stores import PartitionTable, Write
from streams.topics import TopicNames

log = logging.getLogger("rapport.checkpoint")
_ENCODER = msgspec.json.Encoder()
#: Where an input record was read: (partition, offset, 0 for events or 1 for identity).
Position = tuple[int, int, int]


class DeliveryFailed(Exception):
    """The broker did not acknowledge a record: nothing after it in the sequence is done,
    and the input is read again from the last committed offsets."""


class Outbox(Protocol):
    """The producer side of the broker."""

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> None: ...

    def wait(self) -> dict[TopicPartition, int]:
        """Until the broker has acknowledged everything sent; the newest offset of each
        topic partition written since the last call. Raises ``DeliveryFailed``."""
        ...


class Claims(Protocol):
    """Redis: action claims and the read model (``streams/redis_io.py``)."""

    def claim(self, owners: Sequence[tuple[str, str]], holding: str) -> list[bool]: ...

    def prepare(self, changed: Sequence[tuple[str, Profile | None]]) -> object:
        """The read model of ``changed`` as the profiles are now (for ``write_prepared``)."""
        ...

    def write_prepared(self, prepared: object, holding: str) -> None: ...

    def forget(self, profile_keys: Sequence[str], holding: str) -> None: ...

    def confirm(self, action_ids: Sequence[str], holding: str) -> None: ...

    def forget_written(self) -> None:
        """Partitions moved: write whole read-model hashes again."""
        ...


@dataclass
class Sealed:
    """A batch taken out of the engines' hands, ready to be made durable."""

    outputs: list[Output]
    dead: list[tuple[bytes, bytes | None, DeadLetter]]
    #: The read model of the profiles the batch changed (``Claims.prepare``).
    read_model: object | None
    #: Table writes (partition, key, value or None).
    writes: list[tuple[int, bytes, bytes | None]]
    #: Input offsets to commit once the rest is stored.
    offsets: dict[TopicPartition, int]


@dataclass
class Committed:
    """What one ``commit`` made durable."""

    outputs: int = 0
    skipped: int = 0
    changelog: int = 0
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


class Checkpoint:
    def __init__(
        self,
        names: TopicNames,
        engines: PartitionEngines,
        outbox: Outbox,
        claims: Claims | None,
        commit_offsets: Callable[[dict[TopicPartition, int]], None],
        tables: Mapping[int, PartitionTable],
        changelog: Outbox | None = None,
    ) -> None:
        """``changelog``: the producer of the table writes, when not ``outbox`` (it must
        report the offsets written)."""
        self.names = names
        self.engines = engines
        self.outbox = outbox
        self.changelog = changelog or outbox
        self.claims = claims
        self._commit_offsets = commit_offsets
        self.tables = tables
        self.offsets = InputOffsets()
        self._outputs: list[Output] = []
        self._dead: list[tuple[bytes, bytes | None, DeadLetter]] = []
        #: Table writes (partition, key, value or None) the engines' stores made.
        self._writes: list[tuple[int, bytes, bytes | None]] = []
        self.held = 0
        #: Actions not published because their id was claimed and sent before.
        self.skipped_actions = 0
        #: Seconds spent in each step of the sequence, for metrics and the bench.
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def writer(self, partition: int) -> ChangelogWriter:
        """The table writer for ``partition``'s store: writes wait here for ``commit``."""
        writes = self._writes

        def write(key: bytes, value: bytes | None) -> None:
            writes.append((partition, key, value))

        return write

    def read(self, position: Position) -> None:
        partition, offset, topic = position
        self.offsets.read((self.names.inputs[topic], partition), offset)

    def write(self, output: Output) -> None:
        """Keep one output until the next ``commit`` (the checkpoint is the engines' sink)."""
        self._outputs.append(output)
        self.held += 1

    def flush(self) -> None:
        return None  # made durable by ``commit``, in its order

    def hold(
        self,
        raw: bytes | None = None,
        key: bytes | None = None,
        letters: Sequence[DeadLetter] = (),
    ) -> None:
        """One record was handled: keep its dead letters until the next ``commit``, which
        then commits its offset even when it gave nothing."""
        for letter in letters:
            self._dead.append((raw or letter.raw.encode(), key, letter))
        self.held += 1

    def commit(self) -> Committed:
        """Make what is held durable, in the order the module describes; commit offsets."""
        return self.commit_offsets(self.finish(self.seal()))

    def seal(self) -> Sealed:
        """Take what is held out of the engines' hands: the outputs, the read model of the
        profiles changed (as they are now), their table writes and the offsets they free.
        On the data plane's thread, before it applies the next batch; ``finish`` may then
        run on another thread while it does."""
        outputs, dead = self._outputs, self._dead
        self._outputs, self._dead, self.held = [], [], 0
        for letter in self.engines.drain_failed():
            dead.append((letter.raw.encode(), None, letter))
        staged = self.engines.stage()
        read_model = None if self.claims is None else self.claims.prepare(staged)
        self.engines.flush()
        writes = list(self._writes)  # the stores' writers append to this very list
        self._writes.clear()
        inputs = self.names.inputs
        for position in self.engines.drain_done():
            partition, offset, topic = _position(position)
            self.offsets.done((inputs[topic], partition), offset)
        return Sealed(outputs, dead, read_model, writes, self.offsets.committable())

    def finish(self, sealed: Sealed) -> Committed:
        """Steps 1–6 for a sealed batch; step 7 is ``commit_offsets`` of what this returns,
        on the thread that reads the input (librdkafka serves rebalances there, and a
        commit from another thread during one waits for it). Batches must be finished in
        the order sealed."""
        done = Committed()
        outputs = sealed.outputs
        actions = [item for item in outputs if isinstance(item, Action)]
        note = ""
        clock = _Clock(self.seconds)
        if self.claims is not None and actions:
            note = self._note(len(actions))
            owners = [(a.action_id, a.customer_id or a.profile_key) for a in actions]
            allowed = self.claims.claim(owners, note)
            skip = {a.action_id for a, ok in zip(actions, allowed, strict=True) if not ok}
            if skip:
                done.skipped = len(skip)
                self.skipped_actions += len(skip)
                outputs = [
                    o for o in outputs if not (isinstance(o, Action) and o.action_id in skip)
                ]
                actions = [a for a in actions if a.action_id not in skip]
        clock.lap("claims")
        if self.claims is not None and sealed.read_model is not None:
            note = self._note(len(actions))
            self.claims.write_prepared(sealed.read_model, note)
            erased = [
                item.profile_key
                for item in outputs
                if isinstance(item, ProfileChange) and item.kind == "profile_erased"
            ]
            if erased:
                self.claims.forget(erased, note)
        clock.lap("read_model")
        for item in outputs:
            self._send(item)
        for raw, key, letter in sealed.dead:
            self._dead_letter(raw, key, letter)
        done.outputs = len(outputs) + len(sealed.dead)
        self.outbox.wait()
        clock.lap("outputs")
        if self.claims is not None and actions:
            self.claims.confirm([a.action_id for a in actions], note)
        clock.lap("claims")
        done.changelog = self._write_changelog(sealed.writes)
        clock.lap("changelog")
        done.offsets = sealed.offsets
        return done

    def commit_offsets(self, done: Committed) -> Committed:
        """Step 7: commit the input offsets ``finish`` made safe to commit."""
        if done.offsets:
            started = time.perf_counter()
            self._commit_offsets(done.offsets)
            self.seconds["offsets"] += time.perf_counter() - started
        return done

    def _note(self, actions: int) -> str:
        return f"{actions} actions, {self.offsets.waiting()} input records uncommitted"

    def _write_changelog(self, writes: list[tuple[int, bytes, bytes | None]]) -> int:
        if not writes:
            return 0
        topic = self.names.changelog
        last = {partition: i for i, (partition, _, _) in enumerate(writes)}
        tails = set(last.values())
        for i, (partition, key, value) in enumerate(writes):
            if i not in tails:
                self.changelog.send(topic, key, value, partition, None)
        offsets = self.changelog.wait()
        for i in sorted(tails):
            partition, key, value = writes[i]
            self.changelog.send(topic, key, value, partition, None)
        offsets.update(self.changelog.wait())
        by_partition: dict[int, list[Write]] = {}
        for partition, key, value in writes:
            by_partition.setdefault(partition, []).append((key, value))
        for partition, table_writes in by_partition.items():
            table = self.tables.get(partition)
            if table is None:
                continue  # revoked meanwhile: its next owner rebuilds from the changelog
            table.apply(table_writes, offsets.get((topic, partition), table.offset))
        return len(writes)

    def _send(self, item: Output) -> None:
        """Publish one output on the topic of its stream (``engine/outputs.py``)."""
        names, outbox = self.names, self.outbox
        stream = stream_of(item)
        if stream == "identity":  # to the partition homing the profile it is about
            internal: Internal = item  # type: ignore[assignment]
            key = routing_key(internal.route_key).encode()
            outbox.send(
                names.identity, key, encode_internal(internal), self.engines.route(internal)
            )
        elif stream == "churn_labels":  # one partition: one learner
            label: ChurnLabel = item  # type: ignore[assignment]
            outbox.send(names.churn_labels, label.label_id.encode(), _encode_label(label), 0)
        elif stream == "audit":
            audit: ErasureAudit = item  # type: ignore[assignment]
            outbox.send(names.audit, audit.audit_id.encode(), _ENCODER.encode(audit))
        else:  # changes and actions, keyed by the profile they are about
            keyed: ProfileChange | Action | JourneyMilestone = item  # type: ignore[assignment]
            topic = names.changes if stream == "changes" else names.actions
            outbox.send(topic, keyed.profile_key.encode(), _ENCODER.encode(keyed))

    def _dead_letter(self, raw: bytes, key: bytes | None, letter: DeadLetter) -> None:
        """An invalid record unchanged, with why it was refused in its headers; of a record
        refused for its size, only the first bytes (``rapport-size``: how many it had)."""
        headers = {
            "rapport-reason": letter.reason.encode(),
            "rapport-detail": letter.detail.encode(),
            "rapport-source": letter.source.encode(),
        }
        if letter.field is not None:
            headers["rapport-field"] = letter.field.encode()
        if letter.raw_size is not None:
            raw, key = raw[:DEAD_LETTER_PREFIX_BYTES], (key or b"")[:DEAD_LETTER_PREFIX_BYTES]
            headers["rapport-size"] = str(letter.raw_size).encode()
        self.outbox.send(self.names.dead_letters, key, raw, None, headers)

    def forget(self, partitions: Sequence[int]) -> None:
        """Partitions given away: drop their table writes and offsets not yet committed
        (their next owner reads the input again from the committed offsets)."""
        gone = set(partitions)
        self._writes[:] = [w for w in self._writes if w[0] not in gone]
        self.offsets.forget(gone)
        if self.claims is not None:
            self.claims.forget_written()


class _Clock:
    """Adds the time since the last lap to a step's total."""

    def __init__(self, totals: defaultdict[str, float]) -> None:
        self.totals = totals
        self.last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.totals[step] += now - self.last
        self.last = now


def _position(position: object) -> Position:
    assert isinstance(position, tuple), position
    partition, offset, topic = position
    return int(partition), int(offset), int(topic)


def _encode_label(label: ChurnLabel) -> bytes:
    return _ENCODER.encode(label.anonymous())
