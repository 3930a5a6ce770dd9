"""The one loop every runner drives an engine through, and the one end-of-input rule.

Replay (``streams/replay.py``), ``rapport churn evaluate`` (``streams/churn_backtest.py``),
``rapport rules test`` (``streams/rule_tests.py``) and each of the worker's partitions
(``streams/partitions.py``) feed events to a ``Driver``; it applies them to its engine
and writes every output, in order, to each of its sinks (``engine/outputs.py``).

**End of input** (``end``), for a bounded input: no later event can arrive, so the engine
is advanced to the end moment (``until``, by default the newest event time), firing every
wait, review and label due by then; every profile is then brought to that moment
(``Engine.finish``), so profiles compare across customers; and every sink is flushed. An
unbounded input (the worker) never ends: its clock moves with ``advance``.

>>> from engine.core import Engine
>>> from rules.loader import RuleSet
>>> from schemas.decode import decode_event
>>> from state.stores import MemoryProfileStore
>>> kinds: list[str] = []
>>> class Kinds:
...     def write(self, output): kinds.append(output.kind)
...     def flush(self): kinds.append("flushed")
>>> order = decode_event(b'{"type":"order.placed","event_id":"e1","customer_id":"c1",'
...     b'"occurred_at":"2026-01-05T10:00:00Z","properties":{"order_id":"o1","total":30}}')
>>> driver = run([order], Engine(MemoryProfileStore(), RuleSet.empty()), [Kinds()])
>>> kinds
['lifecycle_changed', 'flushed']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from engine.core import Engine
from engine.outputs import Output, Sink, fan_out
from schemas.events import Event
from state.handoff import Internal


class Driver:
    def __init__(self, engine: Engine, sinks: Sequence[Sink] = ()) -> None:
        self.engine = engine
        #: Kept as given: a runner that shares one list among drivers may add to it.
        self.sinks = sinks
        #: Events fed (duplicates and late ones included).
        self.events = 0
        self.first_at = float("inf")

    def _ship(self, outputs: list[Output]) -> list[Output]:
        if outputs:
            fan_out(outputs, self.sinks)
        return outputs

    def apply(self, event: Event, position: object = None, replayed: bool = False) -> list[Output]:
        """Feed one event; what became due goes to the sinks and is returned."""
        self.events += 1
        ts = event.occurred_at.timestamp()
        if ts < self.first_at:
            self.first_at = ts
        return self._ship(self.engine.apply(event, position, replayed))

    def receive(self, record: Internal, position: object = None) -> list[Output]:
        """Feed a record another partition's engine sent."""
        return self._ship(self.engine.receive(record, position))

    def advance(self, now: float) -> list[Output]:
        """Move the clock to ``now``: what falls due goes to the sinks."""
        return self._ship(self.engine.advance(now))

    def end(self, until: float | None = None) -> list[Output]:
        """End of input (see the module): advance to ``until`` (default: the newest event
        time), bring every profile there, flush every sink."""
        engine = self.engine
        at = engine.newest_event_time if until is None else until
        outputs = self._ship(engine.finish(at)) if at > float("-inf") else []
        for sink in self.sinks:
            sink.flush()
        return outputs


def run(
    events: Iterable[Event], engine: Engine, sinks: Sequence[Sink] = (), until: float | None = None
) -> Driver:
    """Feed every event of a bounded input, then end it: the whole loop of a bounded run."""
    driver = Driver(engine, sinks)
    for event in events:
        driver.apply(event)
    driver.end(until)
    return driver
