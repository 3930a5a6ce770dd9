"""Partition engines wired to each other in one process: what the worker does through Kafka.

Records are handed to the partition their key homes them on, as a producer using
murmur2 would; the identity records engines send each other go through a queue, delivered
at once or after a number of further input records (a slow identity topic).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable

import msgspec

from engine import Engine, Output
from rules.loader import RuleSet
from schemas import events as ev
from state.handoff import Forward, Handoff, HandoffRequest, encode_internal
from state.profile import Profile
from streams.partitions import PartitionEngines

NOW = 1.9e9
_INTERNAL = (Forward, Handoff, HandoffRequest)
_ENCODER = msgspec.json.Encoder()


class Exchange:
    def __init__(self, engines: PartitionEngines, delay: int = 0) -> None:
        self.engines = engines
        self.delay = delay
        #: (input records still to pass, partition, encoded record)
        self._queue: deque[tuple[int, int, bytes]] = deque()
        #: Everything the engines put out for the outside world, in order.
        self.outputs: list[Output] = []
        self.internal_sent = 0
        #: Dead letters by reason.
        self.dead: Counter[str] = Counter()

    def partition_of(self, event: ev.Event) -> int:
        return self.engines.route_key(event.profile_key)

    def feed(self, events: Iterable[ev.Event]) -> Exchange:
        for event in events:
            self.feed_raw(self.partition_of(event), _ENCODER.encode(event))
        return self

    def feed_raw(self, partition: int, raw: bytes) -> None:
        handled = self.engines.handle(partition, raw, "test", NOW)
        for letter in handled.dead_letters:
            self.dead[letter.reason] += 1
        self._collect(handled.outputs)
        self._queue = deque((wait - 1, p, r) for wait, p, r in self._queue)
        self._deliver(all_of_them=False)

    def settle(self) -> None:
        """Deliver every identity record on its way, and what answering them sends."""
        self._deliver(all_of_them=True)

    def tick(self, moment: float) -> None:
        for _, fired in self.engines.tick(moment):
            self._collect(fired)
        self._deliver(all_of_them=True)

    def finish(self, moment: float) -> None:
        """Bring every engine to ``moment`` and let the identity records settle."""
        for _ in range(10):
            self._deliver(all_of_them=True)  # what is on its way arrives before the end
            for partition in self.engines.partitions():
                self._collect(self.engines.engine(partition).finish(moment))
            if not self._queue:
                return
            self._deliver(all_of_them=True)
        raise AssertionError("identity records still flowing after 10 rounds")

    def _collect(self, outputs: list[Output]) -> None:
        for item in outputs:
            if isinstance(item, _INTERNAL):
                self.internal_sent += 1
                self._queue.append((self.delay, self.engines.route(item), encode_internal(item)))
            else:
                self.outputs.append(item)

    def _deliver(self, all_of_them: bool) -> None:
        while self._queue and (all_of_them or self._queue[0][0] <= 0):
            _, partition, raw = self._queue.popleft()
            handled = self.engines.receive(partition, raw, "identity")
            assert not handled.dead_letters, handled.dead_letters
            self._collect(handled.outputs)

    def engine(self, partition: int) -> Engine:
        return self.engines.engine(partition)

    def profiles(self) -> dict[str, Profile]:
        found: dict[str, Profile] = {}
        for partition in self.engines.partitions():
            store = self.engine(partition).store
            for key in store.sorted_keys():
                profile = store.get(key)
                assert profile is not None, key
                assert key not in found, f"{key} is homed on two partitions"
                found[key] = profile
        return found


def keys_on_different_partitions(partitions: int, count: int = 2) -> tuple[list[str], list[str]]:
    """Customer ids and anonymous ids such that customer i and visitor i are homed apart."""
    engines = PartitionEngines(RuleSet.empty(), partitions=partitions)
    customers: list[str] = []
    visitors: list[str] = []
    number = 0
    while len(customers) < count:
        number += 1
        customer, visitor = f"c{number}", f"a{number}"
        if engines.route_key(customer) != engines.route_key("anon:" + visitor):
            customers.append(customer)
            visitors.append(visitor)
    return customers, visitors
