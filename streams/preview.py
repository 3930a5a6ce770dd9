"""``rapport rules preview``: what one customer would receive, rendered from a replayed
history, so a marketer reads the message before shipping the template.

The history is replayed through the engine with the rules being previewed; every send to
the customer is rendered, also those the send gate holds back (no consent, quiet hours,
a cap, the holdout), so a message can be read for a test customer who never opted in.
The clock runs on past the last event (``until``, by default 30 days after it), so the
reminders a history leads to are included.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine import Engine, EngineConfig
from engine.driver import Driver
from engine.outputs import Dispatch
from rules.actions import Action
from rules.loader import RuleSet
from schemas.decode import DeadLetter, Ignored
from state.stores import MemoryProfileStore
from streams.sources.contract import read_contract
from streams.sources.files import open_input

#: How long the clock runs past the history's last event, by default.
DEFAULT_RUN_ON_SECONDS = 30 * 86_400.0
_MAX_RECORD_BYTES = 1 << 20


@dataclass(frozen=True)
class Preview:
    """The sends to the customer, in time order, and the records that were not events."""

    sends: list[Action]
    skipped: int


def preview_sends(
    history: str,
    rules: RuleSet,
    customer: str,
    journey: str | None = None,
    until: datetime | None = None,
) -> Preview:
    """Replay ``history`` (a contract JSON-lines file) and return the sends to
    ``customer`` (its id, or an ``anon:`` visitor key), of ``journey`` if given."""
    if rules.templates is None:
        raise ValueError(f"{rules.source} has no templates/: there is nothing to preview")
    if journey is not None and journey not in rules.journeys.by_id:
        known = ", ".join(sorted(rules.journeys.by_id))
        raise ValueError(f"unknown journey {journey!r}; the rules have {known}")
    rules.journeys.mover.render_every_send = True
    engine = Engine(MemoryProfileStore(), rules, config=EngineConfig())
    sends: list[Action] = []

    def keep(action: Action) -> None:
        if (
            action.kind == "send"
            and customer in (action.customer_id, action.profile_key)
            and (journey is None or action.journey_id == journey)
        ):
            sends.append(action)

    driver = Driver(engine, [Dispatch({Action: keep})])
    skipped = 0
    stream, _, _ = open_input(history)
    with stream:
        for item in read_contract(stream, history, None, _MAX_RECORD_BYTES):
            if isinstance(item, DeadLetter | Ignored):
                skipped += 1
                continue
            driver.apply(item)
    last = engine.newest_event_time
    end = until.timestamp() if until is not None else last + DEFAULT_RUN_ON_SECONDS
    driver.end(max(end, last) if last > float("-inf") else None)
    return Preview(sends, skipped)


def describe(action: Action, html_dir: Path | None) -> Iterator[str]:
    """Lines for one send: when, what, its status, then each part of its message."""
    when = datetime.fromtimestamp(action.at, UTC).isoformat(timespec="minutes")
    status = action.status if action.reason is None else f"{action.status}: {action.reason}"
    yield (
        f"=== {when}  {action.journey_id} step {action.step + 1}: "
        f"{action.channel} {action.template} ({status})"
    )
    message = action.message
    if message is None:
        yield f"    (not rendered: {action.detail or 'no template'})"
        return
    yield f"    locale: {message.locale}"
    for name in ("subject", "title", "text", "body", "link"):
        value = getattr(message, name)
        if value is not None:
            label = f"{name}: "
            lines = value.rstrip("\n").splitlines() or [""]
            yield f"    {label}{lines[0]}"
            for line in lines[1:]:
                yield f"    {' ' * len(label)}{line}"
    if message.html is not None and html_dir is not None:
        html_dir.mkdir(parents=True, exist_ok=True)
        path = html_dir / f"{action.action_id}.html"
        path.write_text(message.html, encoding="utf-8")
        yield f"    html: {path}"
    elif message.html is not None:
        yield f"    html: {len(message.html):,} characters (--html DIR writes it to a file)"
