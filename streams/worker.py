"""``rapport worker``: the Faust application that runs the engine on Kafka.

The app owns the topics and the per-partition engines; the agents in ``agents/`` feed
records in and publish what comes out. Topic names take the configured prefix:

=====================  ==========================================================
``<prefix>events``     input, keyed by customer id (or anonymous id)
``<prefix>events.dlq`` input records that are not valid events, reason in headers
``<prefix>actions``    journey actions and run milestones, keyed by profile key
``<prefix>actions.dlq`` actions the delivery stage gave up on, reason in headers
``<prefix>changes``    profile changes (tier, lifecycle, tags, ...), keyed by profile key
``<prefix>identity``   engine to engine: visitor profiles handed to the customer's
                       partition, and events forwarded to the partition that homes
                       their profile (``state/handoff.py``); as many partitions as
                       ``events``, read by the same agent
``<prefix>churn.labels`` churn labels for the one learner (one partition)
``<prefix>churn.models`` the learner's model for every worker (compacted, one partition)
``<prefix>audit``      erasure audit records, without personal data (``state/audit.py``)
=====================  ==========================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import Counter, deque
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import msgspec
from aiokafka.partitioner import murmur2
from faust.types import TP

from churn.tracker import ChurnLabel, ChurnTracker
from rules.actions import Action
from rules.engine import Output
from rules.loader import RuleSet
from rules.reloader import RulesWatcher
from schemas.decode import DeadLetter
from schemas.limits import DEAD_LETTER_PREFIX_BYTES
from state.audit import ErasureAudit
from state.changes import ProfileChange
from state.handoff import INTERNAL_TYPES, encode_internal, routing_key
from state.stores.changelog import ChangelogProfileStore
from streams.churn_io import ChurnIO
from streams.delivery import Delivery
from streams.partitions import PartitionEngines
from streams.read_offsets import guard_read_offsets
from streams.redis_io import RedisIO, holding
from streams.settings import Settings
from streams.table_stores import RocksPartition, faust_store_url, table_options

log = logging.getLogger("rapport.worker")
#: Where an input record was read: (partition, offset, 0 for events or 1 for identity).
Position = tuple[int, int, int]
_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class TopicNames:
    events: str
    dead_letters: str
    actions: str
    action_dead_letters: str
    changes: str
    identity: str
    churn_labels: str
    churn_models: str
    audit: str

    @classmethod
    def with_prefix(cls, prefix: str) -> TopicNames:
        return cls(
            events=f"{prefix}events",
            dead_letters=f"{prefix}events.dlq",
            actions=f"{prefix}actions",
            action_dead_letters=f"{prefix}actions.dlq",
            changes=f"{prefix}changes",
            identity=f"{prefix}identity",
            churn_labels=f"{prefix}churn.labels",
            churn_models=f"{prefix}churn.models",
            audit=f"{prefix}audit",
        )


class Worker:
    """The Faust app, its topics, the profile table and the engines, wired from the settings.

    Delivery: an input offset is committed only after its event is applied, the outputs
    that applying it produced are acknowledged by the broker, and the profiles it changed
    are written to the table's changelog (Faust flushes the producer before it commits).
    A crash therefore replays input whose effects may be partly stored; profiles
    remember their recent event ids, so nothing is applied twice, and outputs come again
    with the same ids (consumers dedup by action id).
    """

    def __init__(self, settings: Settings, rules: RuleSet) -> None:
        self.settings = settings
        worker = settings.worker
        self.names = TopicNames.with_prefix(worker.topic_prefix)
        worker.data_dir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(
            worker.app_id,
            broker=worker.broker,
            store=faust_store_url(worker.store),
            topic_partitions=worker.partitions,
            web_port=worker.web_port or 6066,  # unused when 0: the web server is off
            web_enabled=worker.web_port != 0,
            web_bind=worker.web_bind,
            web_host=worker.advertised_host,
            datadir=str(worker.data_dir),
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            broker_session_timeout=worker.session_seconds,
            broker_heartbeat_interval=max(worker.session_seconds / 10, 0.5),
            broker_rebalance_timeout=worker.rebalance_seconds,
            # Events waiting for the watermark stay unacked on purpose; a rebalance must not
            # wait for them (the next owner reads them again from the committed offset).
            stream_wait_empty=False,
            # No standby copies of other workers' partitions: a standby reads a changelog
            # to its true end, and on Tansu (which reports a partition's end as its last
            # batch's first offset + 1) a write cut short by a stop leaves that end lower
            # than what the standby holds, and Faust then refuses to take the partition
            # over (ConsistencyError). A takeover rebuilds from the changelog instead.
            table_standby_replicas=0,
        )
        raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
        self.events = self.app.topic(self.names.events, partitions=worker.partitions, **raw)
        self.identity = self.app.topic(self.names.identity, partitions=worker.partitions, **raw)
        #: What the events agent reads: both topics, co-partitioned (Faust assigns
        #: partition n of both to the same worker), so a partition's engine sees both.
        #: Internal: Faust creates both (when missing) with ``partitions`` before it
        #: subscribes; a broker left to create the identity topic on first use would give it
        #: its own default count, and partition n of it would not meet partition n of events.
        self.inputs = self.app.topic(
            self.names.events,
            self.names.identity,
            partitions=worker.partitions,
            internal=True,
            **raw,
        )
        self.dead_letters = self.app.topic(self.names.dead_letters, **raw)
        self.actions = self.app.topic(self.names.actions, **raw)
        self.changes = self.app.topic(self.names.changes, **raw)
        self.action_dead_letters = self.app.topic(self.names.action_dead_letters, **raw)
        self.audit = self.app.topic(self.names.audit, **raw)
        #: The churn model: labels to one learner, its model to every worker.
        churn = settings.churn
        self.churn = ChurnIO(churn.learner) if churn.enabled else None
        self.churn_labels = self.app.topic(
            self.names.churn_labels, partitions=1, internal=True, **raw
        )
        self.churn_models = self.app.topic(
            self.names.churn_models, partitions=1, internal=True, compacting=True, **raw
        )
        self.profiles = self.app.Table(
            "profiles",
            partitions=worker.partitions,
            key_type=bytes,
            value_type=bytes,
            options=table_options(worker.store),
        )
        self.engines = PartitionEngines(
            rules,
            settings.profile,
            settings.engine.engine_config(),
            settings.engine.max_clock_skew_seconds,
            store_factory=self._store_for,
            coupon_shares=worker.partitions,
            partitions=worker.partitions,
            churn=(
                ChurnTracker(churn.config(), self.churn.scorer) if self.churn is not None else None
            ),
            input_format=worker.input_format,
            max_record_bytes=settings.engine.max_record_bytes,
        )
        self.watcher = RulesWatcher(settings.rules_dir, rules)
        #: Rule changes swapped in, and changes refused (the last good rules stayed).
        self.rules_reloaded = 0
        self.rules_rejected = 0
        #: Action claims and the read model; None when ``redis.url`` is empty.
        self.redis = RedisIO(settings.redis) if settings.redis.url else None
        if self.redis is None:
            log.warning("redis.url is empty: no action dedup claims, no read model")
        #: Actions not published because their id was claimed and sent before.
        self.skipped_actions = 0
        self.delivery = (
            Delivery(settings.delivery, self.redis) if settings.delivery.enabled else None
        )
        #: One engine call, its publishing and its table writes at a time.
        self.lock = asyncio.Lock()
        #: Input records read but not yet done: position -> (stream, event). A position is
        #: (partition, offset, topic): topic 0 for events, 1 for identity records.
        self.unacked: dict[Position, tuple[Any, Any]] = {}
        self._outputs: list[Output] = []
        #: Table writes (partition, key, value or None) made by the last flush, to send.
        self._changelog_writes: list[tuple[int, bytes, bytes | None]] = []
        #: (consumer generation, events partitions assigned in it), see ``_assigned``.
        self._assignment: tuple[int | None, frozenset[int]] = (None, frozenset())
        #: Per partition, the local table the engine's store was loaded from.
        self._local: dict[int, MutableMapping[bytes, bytes]] = {}
        self._dead: list[tuple[Any, DeadLetter]] = []
        self._held = 0
        #: Per (partition, topic), the offsets read and not yet acked, in order; and those done.
        self._read: dict[tuple[int, int], deque[int]] = {}
        self._done: set[Position] = set()
        #: Per (partition, topic), the highest offset read: consumer lag is measured from it.
        self.read_through: dict[tuple[int, int], int] = {}
        #: Records the broker refused or failed to acknowledge, by operation.
        self.broker_errors: Counter[str] = Counter()

        #: Records fetched before a seek back are dropped, not let move the read offset
        #: (``streams/read_offsets.py``); installed before the fetcher starts.
        self.read_offsets = guard_read_offsets(self.app.consumer)

        from agents import register  # the agents need the app; the app does not need them
        from streams.web import register_pages

        register(self)
        if worker.web_port:
            register_pages(self)

    def _store_for(self, partition: int) -> ChangelogProfileStore:
        local: MutableMapping[bytes, bytes] = self.profiles.data
        if self.settings.worker.store == "rocksdb":
            rocks: Any = self.profiles.data
            local = RocksPartition(lambda: rocks._db_for_partition(partition))
        self._local[partition] = local

        def write(key: bytes, value: bytes | None) -> None:
            self._changelog_writes.append((partition, key, value))

        return ChangelogProfileStore(partition, local, write)

    @property
    def ready(self) -> bool:
        """Tables recovered and no rebalance under way: engines may be built and ticked."""
        app = self.app
        recovery: Any = app.tables.recovery  # type: ignore[attr-defined]
        return recovery.completed.is_set() and not app.in_recovery and not app.rebalancing

    def owns(self, partition: int) -> bool:
        """Whether records of ``partition`` may be applied now: no rebalance under way, and
        the partition assigned here. An engine made during a rebalance would start from a
        half-recovered table and see records out of order."""
        return self.ready and partition in self._assigned()

    def _assigned(self) -> frozenset[int]:
        """The events partitions assigned here, worked out once per consumer generation
        (asked for every record; the assignment changes only with the generation)."""
        generation: int = self.app.consumer_generation_id
        if self._assignment[0] == generation:
            return self._assignment[1]
        topic = self.names.events
        actives = self.app.assignor.assigned_actives()
        partitions = frozenset(tp.partition for tp in actives if tp.topic == topic)
        if self.ready:  # mid-rebalance, the assignment may not be this generation's yet
            self._assignment = (generation, partitions)
        return partitions

    async def settle(self, message: Any) -> bool:
        """Whether ``message`` is this worker's to apply; waits while a rebalance ends.

        Faust drops records of an earlier consumer generation before the agent sees them,
        and seeks to the committed offsets before it resumes fetching; a record of the
        current generation can still arrive in the moment before the rebalance is marked
        as ended. It is not read again, so it must not be skipped: wait until the worker is
        ready, unless a new rebalance begins (then the seek after it reads the record again).
        """
        app: Any = self.app
        while not self.ready and message.generation_id == app.consumer_generation_id:
            await asyncio.sleep(0.02)
        return message.generation_id == app.consumer_generation_id and self.owns(message.partition)

    def partition_of(self, key: str) -> int:
        """The input partition of ``key``, as Kafka's murmur2 partitioner puts it."""
        hashed: int = murmur2(key.encode())
        return (hashed & 0x7FFFFFFF) % self.settings.worker.partitions

    def assigned_partitions(self) -> list[int]:
        return sorted(self._assigned())

    @property
    def held(self) -> int:
        """Records handled (and outputs waiting) since the last ``complete``."""
        return self._held

    def hold(
        self, outputs: list[Output], event: Any = None, letters: Sequence[DeadLetter] = ()
    ) -> None:
        """Keep what one record (or a tick) gave until the next ``complete``."""
        self.engines.counts.count_outputs(outputs)
        self._outputs.extend(outputs)
        for letter in letters:
            self._dead.append((event, letter))
        self._held += 1

    async def complete(self) -> None:
        """Claim the actions held, write the read model, publish what is held and wait for
        the broker, confirm the claims, then write the table, then ack the input.

        The read model goes first: the delivery stage checks an action's profile there
        (consent, erasure) and must see it as of the action or later.

        With Redis unreachable this waits (retrying) with everything held: no input is
        acked, so the events agent stops reading and the backlog stays in Kafka.
        """
        outputs, dead = self._outputs, self._dead
        self._outputs, self._dead, self._held = [], [], 0
        redis = self.redis
        actions = [item for item in outputs if isinstance(item, Action)]
        if redis is not None and actions:
            note = holding(len(actions), 0, len(self.unacked))
            owners = [(a.action_id, a.customer_id or a.profile_key) for a in actions]
            allowed = await redis.claim(owners, note)
            skip = {a.action_id for a, ok in zip(actions, allowed, strict=True) if not ok}
            if skip:
                self.skipped_actions += len(skip)
                outputs = [
                    o for o in outputs if not (isinstance(o, Action) and o.action_id in skip)
                ]
                actions = [a for a in actions if a.action_id not in skip]
        staged = self.engines.stage()
        erased = [
            item.profile_key
            for item in outputs
            if isinstance(item, ProfileChange) and item.kind == "profile_erased"
        ]
        if redis is not None:
            note = holding(len(actions), len(staged), len(self.unacked))
            await redis.write_profiles(staged, note)
            await redis.forget(erased, note)
        pending = []
        for item in outputs:
            if isinstance(item, INTERNAL_TYPES):
                key = routing_key(item.route_key).encode()
                partition = self.engines.route(item)
                raw = encode_internal(item)
                pending.append(await self.produce(self.names.identity, key, raw, partition))
                continue
            if isinstance(item, ChurnLabel):
                key = item.label_id.encode()
                raw = _ENCODER.encode(item.anonymous())
                pending.append(await self.produce(self.names.churn_labels, key, raw, 0))
                continue
            if isinstance(item, ErasureAudit):
                raw = _ENCODER.encode(item)
                pending.append(await self.produce(self.names.audit, item.audit_id.encode(), raw))
                continue
            topic = self.names.changes if isinstance(item, ProfileChange) else self.names.actions
            key = item.profile_key.encode()
            pending.append(await self.produce(topic, key, _ENCODER.encode(item)))
        for event, letter in dead:
            pending.append(await self._dead_letter(event.value, event.key, letter))
        for letter in self.engines.drain_failed():
            raw = letter.raw.encode()  # the event as decoded, JSON
            pending.append(await self._dead_letter(raw, None, letter))
        if pending:
            await asyncio.gather(*pending)  # the broker has them all
        if redis is not None:
            note = holding(len(actions), len(staged), len(self.unacked))
            await redis.confirm([a.action_id for a in actions], note)
        self.engines.flush()
        await self._write_changelog()
        for position in self.engines.drain_done():
            if position in self.unacked:
                self._done.add(position)
        await self._ack_in_order()

    async def _write_changelog(self) -> None:
        """Send the table writes the last flush made and wait until the broker has them all.

        Not ``Table.send_changelog``: it queues in Faust's producer buffer, and the flush
        Faust makes before committing offsets gives up after 0.1 s without a send, so under
        load offsets could be committed (and a clean stop could drop the queue) before the
        profiles they speak for were stored. Awaited here, before the acks, they cannot.

        Only then do the writes go to the local table, so it is never ahead of the
        changelog (a worker killed in between starts from what the changelog holds, and
        reads the events again). With RocksDB, each partition's database then notes the
        changelog offset it holds, so a restart on the same disk reads only what came
        after (as Faust's own writes do).
        """
        writes, self._changelog_writes = self._changelog_writes, []
        if not writes:
            return
        # Each partition's last write goes alone, after the others are stored: a broker
        # that reports a partition's end as the last batch's first offset + 1 (Tansu 0.6
        # does) then reports it right, and Faust's recovery, which reads a changelog up to
        # that end, reads all of it (docs/decisions.md, "The changelog's last write").
        last = {partition: i for i, (partition, _, _) in enumerate(writes)}
        tails = set(last.values())
        stored = await self._send_changelog([w for i, w in enumerate(writes) if i not in tails])
        stored += await self._send_changelog([writes[i] for i in sorted(tails)])
        for partition, key, value in writes:
            local = self._local.get(partition)
            if local is None:
                continue  # revoked meanwhile: its next owner recovers from the changelog
            if value is None:
                local.pop(key, None)
            else:
                local[key] = value
        if self.settings.worker.store == "rocksdb":
            store: Any = self.profiles.data
            newest: dict[Any, int] = {}
            for metadata in stored:
                tp = metadata.topic_partition
                newest[tp] = max(newest.get(tp, -1), metadata.offset)
            for tp, offset in newest.items():
                if tp.partition in self._local:
                    store.set_persisted_offset(tp, offset)

    async def _send_changelog(self, writes: list[tuple[int, bytes, bytes | None]]) -> list[Any]:
        """Send table writes to the changelog; return the broker's metadata of each."""
        topic = self.profiles.changelog_topic.get_topic_name()
        pending = [
            await self.produce(topic, key, value, partition) for partition, key, value in writes
        ]
        return list(await asyncio.gather(*pending))

    async def produce(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> Any:
        """Hand one record to the producer; return the future of the broker's ack. Faust's
        producer directly: ``Topic.send`` adds a channel, serializers and callbacks per
        record, which the hot path does not need (its records are bytes already)."""
        try:
            sent = await self.app.producer.send(topic, key, value, partition, None, None)
        except Exception:
            self.broker_errors["produce"] += 1
            raise
        asyncio.ensure_future(sent).add_done_callback(self._count_ack)
        return sent

    def _count_ack(self, sent: asyncio.Future[Any]) -> None:
        if sent.cancelled() or sent.exception() is not None:
            self.broker_errors["produce"] += 1

    async def _ack_in_order(self) -> None:
        """Ack each partition's done records up to the first one not done, in offset order.

        Faust commits the first run of consecutive acked offsets, and may step over a
        record acked later (faust-streaming 0.15: no gap check from offset 0, and a gap of
        one offset passes); acking only in order keeps an unapplied event uncommitted.
        """
        for (partition, topic), offsets in self._read.items():
            while offsets and (partition, offsets[0], topic) in self._done:
                position = (partition, offsets.popleft(), topic)
                self._done.discard(position)
                stream, event = self.unacked.pop(position)
                await stream.ack(event)

    async def _dead_letter(self, raw: bytes, key: bytes | None, letter: DeadLetter) -> Any:
        """Forward an invalid record unchanged, with why it was refused in its headers; of
        a record refused for its size, only the first bytes (``rapport-size``: how many
        it had)."""
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
        return await self.dead_letters.send(key=key, value=raw, headers=headers)

    async def dead_letter_action(self, raw: bytes, reason: str, detail: str, attempts: int) -> None:
        """An action the delivery stage gave up on, unchanged, with why in its headers."""
        headers = {
            "rapport-reason": reason.encode(),
            "rapport-detail": detail.encode(),
            "rapport-attempts": str(attempts).encode(),
        }
        sent = await self.action_dead_letters.send(value=raw, headers=headers)
        await sent

    def track(self, position: Position, stream: Any, event: Any) -> None:
        """Remember a record read, to ack it (in offset order) once it is done."""
        self.unacked[position] = (stream, event)
        partition, offset, topic = position
        self._read.setdefault((partition, topic), deque()).append(offset)
        if offset > self.read_through.get((partition, topic), -1):
            self.read_through[(partition, topic)] = offset

    def forget(self, partitions: list[int]) -> None:
        """Partitions given to another worker: drop their engines and unacked input."""
        self.engines.release(partitions)
        gone = set(partitions)
        for partition in gone:
            self._local.pop(partition, None)
        for position in [p for p in self.unacked if p[0] in gone]:
            del self.unacked[position]
        self._done = {p for p in self._done if p[0] not in gone}
        for partition, topic in [key for key in self._read if key[0] in gone]:
            self._read.pop((partition, topic), None)
        for key in [key for key in self.read_through if key[0] in gone]:
            del self.read_through[key]

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> records not read yet: the high watermark of the last fetch
        less the next offset to read, for the input partitions owned that were read from.

        On Tansu the high watermark is the first offset of the partition's last batch + 1
        (see ``_write_changelog``), so the lag reads up to a batch too low there."""
        consumer = self.app.consumer
        names = (self.names.events, self.names.identity)
        lag = {}
        for (partition, topic), offset in sorted(self.read_through.items()):
            if not self.owns(partition):
                continue
            name = names[topic]
            try:
                highwater = consumer.highwater(TP(name, partition))
            except Exception:  # no consumer yet, or a partition it no longer has
                continue
            if highwater is not None:
                lag[(name, partition)] = max(0, highwater - offset - 1)
        return lag

    def state_bytes(self) -> int:
        """Bytes the local table stores take on disk under ``data_dir`` (0 in memory)."""
        if self.settings.worker.store != "rocksdb":
            return 0
        total = 0
        for folder, _, files in os.walk(self.settings.worker.data_dir):
            for name in files:
                with contextlib.suppress(OSError):  # a file compacted away meanwhile
                    total += os.stat(os.path.join(folder, name)).st_size
        return total
