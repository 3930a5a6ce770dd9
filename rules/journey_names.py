"""The names journey conditions and payloads read (``JourneyNames``), and what a run
knows of its own messages (opened, clicked), which a branch can read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from rules.actions import action_id
from rules.journey_steps import Journey, Send
from rules.profile_view import CART_GETTERS, PROFILE_GETTERS
from schemas.events import MessageClicked
from state.journey_runs import JourneyRun, JourneyState
from state.profile import Profile

#: What a branch reads of its own run: whether a message the run sent was opened, clicked.
RUN_NAMES: Final = ("message_opened", "message_clicked")


class JourneyNames(Mapping[str, Any]):
    """What journey conditions and payloads see: the profile names plus ``event`` (the
    trigger's properties), and in a branch the run's ``RUN_NAMES``. In a run scoped by a
    cart, the cart names (``cart_value``, ``cart_items``) read that cart, not the
    customer's most recently touched one."""

    __slots__ = ("_cart", "_event", "_profile", "_run")

    def __init__(
        self, profile: Profile, event: Any, cart: str | None = None, run: JourneyRun | None = None
    ) -> None:
        self._profile = profile
        self._event = event
        self._cart = cart
        self._run = run

    def __getitem__(self, name: str) -> Any:
        if self._run is not None and name in RUN_NAMES:
            return self._run.clicked if name == "message_clicked" else self._run.opened
        if self._cart is not None and name in CART_GETTERS:
            return CART_GETTERS[name](self._profile.carts.get(self._cart))
        getter = PROFILE_GETTERS.get(name)
        if getter is not None:
            return getter(self._profile)
        if name == "event" and self._event is not None:
            return self._event
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        yield from PROFILE_GETTERS
        yield "event"

    def __len__(self) -> int:
        return len(PROFILE_GETTERS) + 1


def note_engagement(
    state: JourneyState, by_id: Mapping[str, Journey], profile_key: str, event: Any
) -> None:
    """A ``message.opened``/``message.clicked`` naming an action a run sent marks the run."""
    props = event.properties
    sent = props.action_id
    if sent is None:
        return
    clicked = type(event) is MessageClicked
    for run in state.runs.values():
        journey = by_id.get(run.journey_id)
        if journey is None or (props.journey_id and props.journey_id != journey.id):
            continue
        for index in range(min(run.step + 1, len(journey.steps))):
            step = journey.steps[index]
            if (
                isinstance(step, Send)
                and action_id(journey.id, index, profile_key, run.entity, run.trigger) == sent
            ):
                run.opened = True
                run.clicked = run.clicked or clicked
                return
