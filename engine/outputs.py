"""What the engine puts out: a closed set of types, and the sink protocol every consumer of
them implements.

An output is one of the types in ``STREAM_OF``, which also says which stream it belongs
on (the worker's topic, replay's file). Everything that consumes outputs is a ``Sink``
(``write`` each output, ``flush`` at the end of a batch or of the input): the worker's
commit (``streams/checkpoint.py``), replay's files (``streams/replay.py``), the edge
counts behind the metrics (``streams/edge_counts.py``), the journey report
(``rules/journey_report.py``) and the churn learner (``streams/churn_io.py``). A new
output kind is one type added here, plus the sinks that care about it.

>>> from state.changes import ProfileChange
>>> change = ProfileChange.make("tag_added", "c1", None, "vip", 0.0, "e1")
>>> stream_of(change)
'changes'
>>> seen: list[str] = []
>>> sink = Dispatch({ProfileChange: lambda item: seen.append(item.kind)})
>>> fan_out([change], [sink]); seen
['tag_added']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

from churn.tracker import ChurnLabel
from rules.actions import Action, JourneyMilestone
from rules.routing import TicketRouted
from state.audit import ErasureAudit
from state.changes import ProfileChange
from state.handoff import Forward, Handoff, HandoffRequest

#: Every output: profile changes and ticket routing decisions, journey actions and run
#: milestones, churn labels for the learner, erasure audit records, and the records
#: engines of other partitions must see (``state/handoff.py``).
Output = (
    ProfileChange
    | TicketRouted
    | Action
    | JourneyMilestone
    | ChurnLabel
    | ErasureAudit
    | HandoffRequest
    | Handoff
    | Forward
)

#: The stream each output type is written to: the one table a new output kind is added to.
OutputStream = Literal["changes", "actions", "churn_labels", "audit", "identity"]
STREAM_OF: Mapping[type, OutputStream] = {
    ProfileChange: "changes",
    TicketRouted: "changes",
    Action: "actions",
    JourneyMilestone: "actions",
    ChurnLabel: "churn_labels",
    ErasureAudit: "audit",
    HandoffRequest: "identity",
    Handoff: "identity",
    Forward: "identity",
}
OUTPUT_TYPES: tuple[type, ...] = tuple(STREAM_OF)


def stream_of(output: Output) -> OutputStream:
    """The stream ``output`` belongs on."""
    return STREAM_OF[type(output)]


class Sink(Protocol):
    """A consumer of outputs (as quix-streams' ``BaseSink``: ``add`` / ``flush``)."""

    def write(self, output: Output) -> None:
        """Take one output, in the order the engine gave it."""

    def flush(self) -> None:
        """The end of a batch, or of the input: make what was written durable or final."""


class Dispatch:
    """A sink that hands each output to the handler for its type and ignores the others;
    the base of the sinks that care about a few kinds."""

    def __init__(self, handlers: Mapping[type, Callable[[Any], None]]) -> None:
        unknown = [cls.__name__ for cls in handlers if cls not in STREAM_OF]
        if unknown:
            raise TypeError(f"not output types: {unknown}; outputs are {list(STREAM_OF)}")
        self._handlers = dict(handlers)

    def write(self, output: Output) -> None:
        handler = self._handlers.get(type(output))
        if handler is not None:
            handler(output)

    def flush(self) -> None:
        return None


def fan_out(outputs: Sequence[Output], sinks: Iterable[Sink]) -> None:
    """Write every output to every sink, sink by sink."""
    for sink in sinks:
        write = sink.write
        for output in outputs:
            write(output)
