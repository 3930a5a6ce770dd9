"""One engine per input partition: what a worker drives, with no Kafka in sight.

A partition moves between workers as a whole, so everything an engine keeps (profiles,
waiting events, timers, the watermark) is per partition. ``handle`` decodes one record
and feeds it to its partition's engine through the partition's driver
(``engine/driver.py``); ``tick`` moves every engine to a moment of the clock. What the
engines give goes to the sinks (the edge counts, and what the runner adds: the worker's
commit), and is returned too. The Faust agents in ``agents/`` are thin adapters
over this class, and the unit tests drive it directly.

Given the partition count, each engine knows which profiles are homed on its partition
(Kafka's murmur2 of the record key, as producers and the worker's profile lookup use):
a visitor who identifies as a customer homed elsewhere is handed over between engines
with the records of ``state/handoff.py``. ``handle`` and ``tick`` return them among the
outputs; ``route`` says which partition each must reach, and ``receive`` applies one
there.

>>> from rules.loader import RuleSet
>>> engines = PartitionEngines(RuleSet.empty())
>>> line = (b'{"type":"order.placed","event_id":"e1","customer_id":"c1",'
...     b'"occurred_at":"2026-01-05T10:00:00Z","properties":{"order_id":"o1","total":30}}')
>>> engines.handle(3, line, "events/3@0", now=1.9e9).outputs
[]
>>> [c.kind for c in engines.handle(3, b"{", "events/3@1", now=1.9e9).outputs], engines.partitions()
([], [3])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

import msgspec
from aiokafka.partitioner import murmur2

from churn.tracker import ChurnTracker
from engine import Engine, EngineConfig, Output, Sink
from engine.driver import Driver
from rules.coupon_pools import CouponLedger
from rules.loader import RuleSet
from schemas.decode import (
    DeadLetter,
    Ignored,
    PartialEvent,
    dead_letter,
    decode_event,
    latest_accepted,
)
from schemas.events import Event
from schemas.limits import DEFAULT_MAX_RECORD_BYTES
from schemas.segment import SegmentDecoding, decode_segment
from state.handoff import Internal, decode_internal, routing_key
from state.kpis import KpiCounts
from state.policy import ProfilePolicy
from state.population import Population
from state.profile import Profile
from state.stores import MemoryProfileStore, PartitionMeta, ProfileStore
from streams.dead_letters import failed_letters
from streams.edge_counts import EdgeCounts

#: How records on the input topic are written.
InputFormat = Literal["contract", "segment"]


@dataclass
class Handled:
    """What one input record gave: outputs to publish, and the dead letters it became (a
    partial record gives both)."""

    outputs: list[Output] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


class PartitionEngines:
    def __init__(
        self,
        rules: RuleSet,
        policy: ProfilePolicy | None = None,
        config: EngineConfig | None = None,
        max_clock_skew_seconds: float = 3600.0,
        store_factory: Callable[[int], ProfileStore] = lambda _: MemoryProfileStore(),
        coupon_shares: int | None = None,
        partitions: int | None = None,
        churn: ChurnTracker | None = None,
        input_format: InputFormat = "contract",
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        """``input_format``: how records on the input topic are written, ``contract`` or
        ``segment`` (Segment / RudderStack messages, ``schemas/segment.py``).

        ``coupon_shares``: the partition count when engines of other partitions run
        elsewhere at the same time; each partition then takes its own share of every
        coupon pool (``CouponLedger``), so no code goes out twice.

        ``partitions``: the input topic's partition count, so each engine keeps only the
        profiles homed on its partition; None homes every profile on every engine (one
        engine, or engines fed by something other than a keyed topic)."""
        self.partition_count = partitions
        self.input_format = input_format
        self.max_bytes = max_record_bytes
        self.rules = rules
        self.policy = policy or ProfilePolicy()
        self.config = config or EngineConfig()
        self.max_clock_skew = timedelta(seconds=max_clock_skew_seconds)
        self._store_factory = store_factory
        #: Churn snapshots and labels in every engine (``churn/tracker.py``); None: off.
        self.churn = churn
        #: Events by type and dead letters by reason, counted as records are decoded;
        #: the runner counts outputs into it too (``streams/edge_counts.py``).
        self.counts = EdgeCounts()
        #: Where every engine's outputs go, in order: the counts, then what the runner adds
        #: (``add_sink``: the worker's commit).
        self.sinks: list[Sink] = [self.counts]
        self._released_duplicates = self._released_late = 0
        self._released_kpis = KpiCounts()
        self._coupon_shares = coupon_shares
        self._engines: dict[int, Engine] = {}
        self._drivers: dict[int, Driver] = {}
        self._done: list[object] = []
        #: partition -> highest offset handled, and the same as recovered at take-over
        self._read_through: dict[int, int] = {}
        self._recovered_through: dict[int, int] = {}

    def add_sink(self, sink: Sink) -> None:
        """Have every engine's outputs written to ``sink`` too, after the counts."""
        self.sinks.append(sink)

    def set_store_factory(self, factory: Callable[[int], ProfileStore]) -> None:
        """Where engines made from now on keep their profiles (the worker's tables)."""
        self._store_factory = factory

    def engine(self, partition: int) -> Engine:
        """The partition's engine; made on first use from whatever its store recovered."""
        engine = self._engines.get(partition)
        if engine is None:
            store = self._store_factory(partition)
            home = None if self.partition_count is None else self._home_of(partition)
            engine = Engine(store, self.rules, self.policy, self.config, home, self.churn)
            if self._coupon_shares is not None:
                engine.coupons = CouponLedger(share=(partition, self._coupon_shares))
            meta = store.meta  # what a table recovered (a new store: nothing)
            self._recovered_through[partition] = meta.read_through
            self._read_through[partition] = meta.read_through
            engine.restore_clock(_time(meta.newest), _time(meta.advanced))
            engine.coupons.restore(meta.coupons_used)
            engine.resume()
            self._engines[partition] = engine
            self._drivers[partition] = Driver(engine, self.sinks)
        return engine

    def driver(self, partition: int) -> Driver:
        """The loop that feeds the partition's engine and ships its outputs to the sinks."""
        driver = self._drivers.get(partition)
        if driver is None:
            self.engine(partition)
            driver = self._drivers[partition]
        return driver

    def _home_of(self, partition: int) -> Callable[[str], bool]:
        route = self.route_key

        def home(profile_key: str) -> bool:
            return route(profile_key) == partition

        return home

    def route_key(self, profile_key: str) -> int:
        """The partition that homes ``profile_key`` (0 when every engine homes everything)."""
        count = self.partition_count
        return 0 if count is None else partition_of(routing_key(profile_key), count)

    def route(self, record: Internal) -> int:
        """The partition whose engine must receive ``record``."""
        return self.route_key(record.route_key)

    def ensure(self, partitions: Iterable[int]) -> None:
        """Have an engine for each of ``partitions``, so their timers fire without new events."""
        for partition in partitions:
            self.engine(partition)

    def lookup(self, partition: int, key: str) -> Profile | None:
        """The profile ``key`` (or the customer it was merged into) on ``partition``."""
        engine = self._engines.get(partition)
        if engine is None:
            return None
        return engine.store.get(engine.store.resolve(key))

    def partitions(self) -> list[int]:
        return sorted(self._engines)

    def handle(
        self,
        partition: int,
        raw: bytes,
        source: str,
        now: float,
        position: object = None,
        offset: int | None = None,
    ) -> Handled:
        """Decode ``raw`` (read at ``source``) and apply it; ``now`` bounds future times.

        ``position`` comes back from ``drain_done`` once the record is dealt with: at once
        for a dead letter, when its engine has applied it for an event. ``offset`` (the
        record's place in its partition) tells records read again after a restart.
        """
        driver = self.driver(partition)
        replayed = offset is not None and offset <= self._recovered_through.get(partition, -1)
        if offset is not None and offset > self._read_through.get(partition, -1):
            self._read_through[partition] = offset
        latest = latest_accepted(datetime.fromtimestamp(now, UTC), self.max_clock_skew)
        if self.input_format == "segment":
            items = decode_segment(
                raw, source=source, position=0, latest_allowed=latest, max_bytes=self.max_bytes
            )
            return self._apply_all(driver, items, now, position, replayed)
        item = decode_event(
            raw, source=source, position=0, latest_allowed=latest, max_bytes=self.max_bytes
        )
        if isinstance(item, DeadLetter):
            self.counts.count_dead(item.reason)
            if position is not None:
                self._done.append(position)
            return Handled(dead_letters=[item])
        if isinstance(item, PartialEvent):
            return self._apply_all(driver, [item], now, position, replayed)
        self.counts.count_read(type(item), now - item.occurred_at.timestamp())
        return Handled(outputs=driver.apply(item, position, replayed))

    def _apply_all(
        self,
        driver: Driver,
        items: list[SegmentDecoding],
        now: float,
        position: object,
        replayed: bool,
    ) -> Handled:
        """Apply the events one record gave; dead-letter the rest. The record's position
        goes with its last event (all of one record's events share its time, so the
        engine applies them together), or is done at once when it gave none."""
        handled = Handled()
        events: list[Event] = []
        for item in items:
            if isinstance(item, PartialEvent):
                handled.dead_letters.append(item.dropped)
                self.counts.count_dead(item.dropped.reason)
                events.append(item.event)
            elif isinstance(item, DeadLetter):
                handled.dead_letters.append(item)
                self.counts.count_dead(item.reason)
            elif isinstance(item, Ignored):
                self.counts.count_ignored(item.name)
            else:
                events.append(item)
        if not events and position is not None:
            self._done.append(position)
        for index, event in enumerate(events, start=1):
            self.counts.count_read(type(event), now - event.occurred_at.timestamp())
            mark = position if index == len(events) else None
            handled.outputs.extend(driver.apply(event, mark, replayed))
        return handled

    def receive(self, partition: int, raw: bytes, source: str, position: object = None) -> Handled:
        """Apply a record another partition's engine sent (``state/handoff.py``).

        Such records come from engines, not from producers: one that does not decode is a
        bug or a foreign write, and goes to the dead letters like a bad event.
        """
        try:
            record = decode_internal(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            if position is not None:
                self._done.append(position)
            letter = dead_letter(
                raw, source=source, position=0, reason="invalid_internal", detail=str(error)
            )
            self.counts.count_dead(letter.reason)
            return Handled(dead_letters=[letter])
        return Handled(outputs=self.driver(partition).receive(record, position))

    def duplicates(self) -> int:
        """Events skipped as already applied, by every engine this worker has had."""
        live = sum(engine.stats.duplicates for engine in self._engines.values())
        return self._released_duplicates + live

    def late(self) -> int:
        """Events that came later than the allowed lateness, by every engine it has had."""
        return self._released_late + sum(e.stats.late for e in self._engines.values())

    def kpis(self) -> KpiCounts:
        """KPI flows tallied by every engine this worker has had (``state/kpis.py``)."""
        total = KpiCounts()
        total.add(self._released_kpis)
        for engine in self._engines.values():
            total.add(engine.kpis.counts)
        return total

    def population(self) -> Population:
        """The customer base held by the engines of the partitions owned now."""
        counted = Population()
        for engine in self._engines.values():
            for profile in engine.store.profiles():
                counted.add(profile)
        return counted

    def profiles(self) -> int:
        """Profiles held by the engines of the partitions owned now."""
        return sum(len(engine.store) for engine in self._engines.values())

    def partition_sizes(self) -> dict[int, tuple[int, int]]:
        """Per partition held: (profiles, bytes of its table as encoded)."""
        sizes = {}
        for partition, engine in self._engines.items():
            store = engine.store
            sizes[partition] = (len(store), store.encoded_bytes())
        return sizes

    def parked_events(self) -> int:
        """Events held for customers waiting for a visitor's profile from another partition."""
        return sum(engine.parked_events for engine in self._engines.values())

    def drain_failed(self) -> list[DeadLetter]:
        """Dead letters for events whose application raised since the last call."""
        letters: list[DeadLetter] = []
        for engine in self._engines.values():
            letters.extend(failed_letters(engine, self.counts))
        return letters

    def drain_done(self) -> list[object]:
        """Positions of the records dealt with since the last call."""
        done, self._done = self._done, []
        for partition in self.partitions():
            done.extend(self._engines[partition].drain_done())
        return done

    def stage(self) -> list[tuple[str, Profile | None]]:
        """Profiles changed since the last call, not yet written to their table (None for
        one deleted): what the read model must be told before the table is written."""
        staged: list[tuple[str, Profile | None]] = []
        for engine in self._engines.values():
            staged.extend(engine.store.stage())
        return staged

    def flush(self) -> int:
        """Write changed profiles through to stores that keep them elsewhere (a table)."""
        writes = 0
        for partition, engine in self._engines.items():
            store = engine.store
            newest, advanced = engine.clock
            meta = PartitionMeta(
                read_through=self._read_through.get(partition, -1),
                newest=newest if newest > float("-inf") else None,
                advanced=advanced if advanced > float("-inf") else None,
                coupons_used=engine.coupons.used(),
            )
            writes += store.flush(meta if meta != store.meta else None)
        return writes

    def tick(self, now: float, only: Iterable[int] | None = None) -> list[tuple[int, list[Output]]]:
        """Move every engine (or those of ``only``) to ``now`` less the allowed lateness:
        waits due by then fire (and go to the sinks)."""
        moment = now - self.config.allowed_lateness_seconds
        fired = []
        chosen = self.partitions() if only is None else sorted(set(only) & set(self._engines))
        for partition in chosen:
            driver = self._drivers[partition]
            if moment > driver.engine.watermark:
                outputs = driver.advance(moment)
                if outputs:
                    fired.append((partition, outputs))
        return fired

    def swap_rules(self, rules: RuleSet) -> None:
        self.rules = rules
        for engine in self._engines.values():
            engine.swap_rules(rules)

    def release(self, partitions: Iterable[int]) -> None:
        """Forget the engines of partitions this worker no longer owns."""
        for partition in partitions:
            engine = self._engines.pop(partition, None)
            self._drivers.pop(partition, None)
            if engine is not None:  # its counts stay in the totals
                self._released_duplicates += engine.stats.duplicates
                self._released_late += engine.stats.late
                self._released_kpis.add(engine.kpis.counts)
            self._read_through.pop(partition, None)
            self._recovered_through.pop(partition, None)


@lru_cache(maxsize=65_536)
def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's murmur2 partitioner (the Java client's default) gives ``key``."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def _time(value: float | None) -> float:
    return float("-inf") if value is None else value
