"""The worker's data plane: the input topics read, applied and written in batches.

The events topic and the identity topic (co-partitioned: the ``range`` assignor gives
partition n of both to the same worker) are read with librdkafka's batch consume, in a
thread of their own, so no per-record framework cost is paid: a batch of up to
``BATCH`` records is decoded and applied by the partitions' engines, then ``Checkpoint``
(``streams/checkpoint.py``) seals what it gave and makes it durable and commits the input
offsets, on a second thread, while the next batch is read and applied: the broker's and
Redis's waits of one batch overlap the work of the next (one batch in flight at most).
That module is the one place where an offset is committed. The Faust application around
it (``streams/worker.py``) keeps what is not per record: the web server, the delivery
stage, the churn learner, rule reloads.

Partitions move between workers with the consumer group's rebalances (eager: every
partition is revoked, then the new assignment given). A revoked partition's batch is
committed first; its engine and table are then dropped, and only then does the
assignment go to anyone else: no two workers ever apply the same partition, and no
record fetched before a rebalance is applied after it (librdkafka drops fetched records
of revoked partitions). A partition assigned is rebuilt before any of its records is
read: its local table is brought up to the changelog's end (``rebuild``), then its engine
is made from it.

With ``clock: wall`` every engine is moved to the wall clock less the allowed lateness
after every batch (and at least every ``IDLE_SECONDS`` with no input), so journeys fire
on time without new events; but a partition's engine follows the wall clock only once
the backlog its partition had when it was assigned is read. Until then it runs on event
time, as a replay does: a backlog read after a stop is applied as it happened, not
judged late against a clock that ran on without it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition as KafkaPartition,
)

from streams.checkpoint import Checkpoint, Claims, DeliveryFailed
from streams.offsets import TopicPartition
from streams.partitions import PartitionEngines
from streams.rebuild import rebuild
from streams.table_stores import PartitionTable, StoreKind, table_path
from streams.topics import TopicNames

log = logging.getLogger("rapport.plane")
#: Records read and applied per batch, at most.
BATCH = 2000
#: How long a read waits for records when there are none: bounds the wall clock's step.
IDLE_SECONDS = 0.02


class KafkaOutbox:
    """The ``Outbox`` of ``streams/checkpoint.py`` on librdkafka's producer: records are
    queued and batched by librdkafka; ``wait`` flushes and reports.

    ``offsets``: report the newest offset written per partition (the changelog's, which
    the local tables note); without it, librdkafka reports failures only, which spares a
    Python call per record acknowledged."""

    def __init__(self, config: dict[str, Any], offsets: bool = True) -> None:
        extra = {} if offsets else {"delivery.report.only.error": True}
        self.producer = Producer({**config, **extra, "on_delivery": self._delivered})
        self._newest: dict[TopicPartition, int] = {}
        self._failed: list[str] = []
        #: Records the broker refused or failed to acknowledge.
        self.errors = 0

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.errors += 1
            self._failed.append(f"{message.topic()}[{message.partition()}]: {error.str()}")
            return
        tp = (message.topic() or "", message.partition() or 0)
        offset = message.offset() or 0
        if offset > self._newest.get(tp, -1):
            self._newest[tp] = offset

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> None:
        extra: dict[str, Any] = {}
        if partition is not None:
            extra["partition"] = partition
        if headers:
            extra["headers"] = dict(headers)
        while True:
            try:
                self.producer.produce(topic, value, key, **extra)
                return
            except BufferError:  # librdkafka's queue is full: let acknowledgements drain it
                self.producer.poll(0.05)

    def wait(self) -> dict[TopicPartition, int]:
        while self.producer.flush(5.0) > 0:
            log.warning("broker slow to acknowledge: %d records waiting", len(self.producer))
        if self._failed:
            failed, self._failed = self._failed, []
            raise DeliveryFailed(f"{len(failed)} records not acknowledged, the first: {failed[0]}")
        newest, self._newest = self._newest, {}
        return newest


class DataPlane:
    """The input read, applied and committed in batches, in a thread of its own.

    Everything it touches (engines, tables, the checkpoint) is touched under ``lock``;
    others (the web pages, rule reloads) go through ``call``."""

    def __init__(
        self,
        names: TopicNames,
        engines: PartitionEngines,
        consumer_config: dict[str, Any],
        producer_config: dict[str, Any],
        claims: Claims | None,
        data_dir: Path,
        store: StoreKind,
        wall_clock: bool,
        owner_url: str | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.names = names
        self.engines = engines
        self._consumer_config = consumer_config
        self.outbox = KafkaOutbox(producer_config, offsets=False)
        # Profiles are JSON of a few KB: lz4 (in librdkafka's threads, not Python's) cuts
        # what the broker stores and sends back at a rebuild several times over. Only the
        # changelog: it is read by the data plane alone, other topics by any consumer.
        self.changelog_outbox = KafkaOutbox({**producer_config, "compression.type": "lz4"})
        self.data_dir = data_dir
        self.store = store
        self.wall_clock = wall_clock
        self.owner_url = owner_url
        self._on_failure = on_failure
        self.tables: dict[int, PartitionTable] = {}
        self.checkpoint = Checkpoint(
            names, engines, self.outbox, claims, self._commit, self.tables, self.changelog_outbox
        )
        engines.add_sink(self.checkpoint)  # every engine's outputs wait there for a commit
        engines.set_store_factory(self._store_for)
        self.lock = threading.RLock()
        self.consumer: Consumer | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rapport-data-plane", daemon=True)
        #: True between an assignment's rebuild and the next rebalance.
        self.ready = False
        self.assigned: frozenset[int] = frozenset()
        #: Per events partition assigned, the offset its backlog ends at (when assigned);
        #: a partition leaves once a record there is read, and follows the wall clock.
        self.backlog: dict[int, int] = {}
        self.failure: BaseException | None = None
        #: Counts for metrics: batches committed, changelog records read in rebuilds.
        self.batches = 0
        self.records = 0
        self.rebuilt_records = 0
        self._sync_commit = False
        #: The batch being made durable while the next is read and applied.
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="rapport-commit")
        self._inflight: Future[Any] | None = None

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch under way, commit it, leave the group."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def call(self, function: Callable[[], Any]) -> Any:
        """Run ``function`` with the data plane held still (from another thread)."""
        with self.lock:
            return function()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as error:
            self.failure = error
            log.exception("data plane stopped: %s", error)
            if self._on_failure is not None:
                self._on_failure(error)

    def _loop(self) -> None:
        consumer = self.consumer = Consumer(
            {
                **self._consumer_config,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "range",
            }
        )
        consumer.subscribe(
            list(self.names.inputs),
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._lost,
        )
        try:
            seconds = self.checkpoint.seconds
            while not self._stopping.is_set():
                started = time.perf_counter()
                messages = consumer.consume(BATCH, IDLE_SECONDS)
                read = time.perf_counter()
                seconds["read"] += read - started
                with self.lock:
                    self._apply(messages)
                self.records += len(messages)
        finally:
            with self.lock:
                self._settle()
                if self.checkpoint.held:
                    self._sync_commit = True
                    self.checkpoint.commit()
            consumer.close()  # revokes (committing) and leaves the group
            self.changelog_outbox.wait()
            spent = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(self.checkpoint.seconds.items()))
            log.info(
                "data plane stopped: %d records in %d batches; %s",
                self.records,
                self.batches,
                spent,
            )
            self.outbox.wait()
            for table in self.tables.values():
                table.close()
            self._committer.shutdown()

    def _apply(self, messages: list[Message]) -> None:
        engines, checkpoint = self.engines, self.checkpoint
        if self._inflight is not None and self._inflight.done():
            self._settle()  # commit its offsets now, not when the next batch is sealed
        events, owned = self.names.events, self.assigned
        now = time.time()
        started = time.perf_counter()
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume: %s", error.str())
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            if partition is None or offset is None or partition not in owned:
                continue
            raw = message.value() or b""
            source = f"{topic}/{partition}@{offset}"
            if topic == events:
                if partition in self.backlog and offset + 1 >= self.backlog[partition]:
                    del self.backlog[partition]
                position = (partition, offset, 0)
                checkpoint.read(position)
                handled = engines.handle(partition, raw, source, now, position, offset)
            else:  # from another partition's engine (state/handoff.py)
                position = (partition, offset, 1)
                checkpoint.read(position)
                handled = engines.receive(partition, raw, source, position)
            checkpoint.hold(raw, message.key(), handled.dead_letters)
        if self.wall_clock and self.ready:  # what fires goes to the checkpoint (a sink)
            engines.tick(now, [p for p in owned if p not in self.backlog])
        checkpoint.seconds["apply"] += time.perf_counter() - started
        if checkpoint.held:
            sealed = checkpoint.seal()
            self._settle()
            self._inflight = self._committer.submit(checkpoint.finish, sealed)
            self.batches += 1

    def _settle(self) -> None:
        """Wait until the batch in flight is durable (raises what made it fail), then commit
        its offsets from this thread."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            self.checkpoint.commit_offsets(inflight.result())

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        partitions = [KafkaPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            if self._sync_commit:
                consumer.commit(offsets=partitions, asynchronous=False)
            else:
                consumer.commit(offsets=partitions, asynchronous=True)
        except KafkaException as error:  # not a member any more: the next owner reads again
            log.warning("offsets not committed (%s): they are read again", error)

    # --- rebalances (called by librdkafka inside consume, on this thread) -------------------

    def _assigned(self, consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        mine = sorted({tp.partition for tp in partitions if tp.topic == self.names.events})
        started = time.monotonic()
        with self.lock:
            self._settle()
            fresh = {}
            for partition in mine:
                if partition not in self.tables:
                    path = table_path(self.data_dir, self.store, partition)
                    fresh[partition] = self.tables[partition] = PartitionTable(path)
            read = rebuild(self._consumer_config, self.names.changelog, fresh)
            self.rebuilt_records += read
            self.assigned = frozenset(mine)
            self.backlog = self._backlog(consumer, mine)
            self.engines.ensure(mine)
            if self.owner_url is not None and mine:
                for partition in mine:
                    key = str(partition).encode()
                    self.outbox.send(self.names.owners, key, self.owner_url.encode(), 0)
                self.outbox.wait()
            self.ready = True
        log.info(
            "partitions assigned: %s (rebuilt from %d changelog records in %.1fs)",
            mine,
            read,
            time.monotonic() - started,
        )

    def _backlog(self, consumer: Consumer, partitions: list[int]) -> dict[int, int]:
        """Per partition, the end of what it holds beyond its committed offset (none for
        one read to its end)."""
        topic = self.names.events
        tps = [KafkaPartition(topic, p) for p in partitions]
        try:
            committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=30)}
            ends = {}
            for tp in tps:
                _, high = consumer.get_watermark_offsets(tp, timeout=30)
                if high > max(committed.get(tp.partition, -1), 0):
                    ends[tp.partition] = high
        except KafkaException as error:
            log.warning("backlog of %s unknown (%s): following the wall clock at once", tps, error)
            return {}
        return ends

    def _revoked(self, consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        with self.lock:
            self.ready = False
            self._settle()
            if self.checkpoint.held:
                self._sync_commit = True
                try:
                    self.checkpoint.commit()
                finally:
                    self._sync_commit = False
            self._release(partitions)

    def _lost(self, consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        """The group went on without this worker (it missed its session): what is held is
        not committed; the new owners read it again."""
        with self.lock:
            self.ready = False
            try:
                self._settle()
            except KafkaException as error:  # not a member: its offsets may not commit
                log.warning("batch in flight when the partitions were lost: %s", error)
            log.warning(
                "partitions lost to the group: %s", sorted({p.partition for p in partitions})
            )
            self._release(partitions)

    def _release(self, partitions: list[KafkaPartition]) -> None:
        gone = sorted({tp.partition for tp in partitions if tp.topic == self.names.events})
        if not gone:
            return
        self.engines.release(gone)
        self.checkpoint.forget(gone)
        for partition in gone:
            table = self.tables.pop(partition, None)
            if table is not None:
                table.close()
        self.assigned = self.assigned - set(gone)
        log.info("partitions revoked: %s (engines released)", gone)

    def _store_for(self, partition: int) -> Any:
        from state.stores.changelog import ChangelogProfileStore

        table = self.tables[partition]
        return ChangelogProfileStore(partition, table, self.checkpoint.writer(partition))

    # --- what the worker reports ------------------------------------------------------------

    def consumer_lag(self) -> dict[TopicPartition, int]:
        """(topic, partition) -> records not read yet, from the last fetch's high watermark
        (on Tansu, the first offset of the partition's last batch + 1: a batch too low)."""
        consumer = self.consumer
        if consumer is None:
            return {}
        lag = {}
        for (topic, partition), offset in self.checkpoint.offsets.read_through().items():
            if partition not in self.assigned:
                continue
            try:
                _, high = consumer.get_watermark_offsets(
                    KafkaPartition(topic, partition), cached=True
                )
            except KafkaException:
                continue
            if high >= 0:
                lag[(topic, partition)] = max(0, high - offset - 1)
        return lag
