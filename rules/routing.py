"""Ticket classification and routing (分类与分配), compiled from ``routing.yaml`` and
``solutions.yaml`` (``rules/routing_spec.py``).

When a ticket opens, ``Routing.route`` decides, in this order:

1. **Category**: the one the help desk set on the event; else the first category, in
   file order, with a keyword in the subject or body; else the help desk's ``topic`` when
   it names a category; else ``default_category``.
2. **Queue** and **priority**: the rules, in file order, each a condition on the profile's
   names and the ticket (``event.category``, ``event.sentiment``, ...). For the queue, and
   for the priority, the first matching rule that sets one decides; no rule: the queue
   the event came with, else ``default_queue``, and the requested priority.

Every decision names what made it (``TicketRouted``: ``category_by`` and ``keyword``,
``queue_rule``, ``priority_rule``), and carries the category's suggested answers.
The engine's service desk (``engine/service_desk.py``) puts the decision on the ticket
event itself, so journeys and the SLA clock read the routed priority and queue.

>>> routing = compile_routing(RoutingSpec.model_validate({
...     "categories": [{"id": "refund", "keywords": {"zh": ["退款"], "en": ["refund"]}}],
...     "queues": ["general", "refunds"], "default_queue": "general",
...     "rules": [{"id": "refunds", "when": "event.category == 'refund'", "queue": "refunds"},
...               {"id": "angry", "when": "event.sentiment <= -0.6", "raise_priority": 1}]}))
>>> routing.classify("Refunds take forever", None)
('refund', 'keyword', 'refund')
>>> routing.band(-0.9), routing.band(None), raised("urgent", 2)
('very_negative', 'unscored', 'urgent')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Final

import msgspec

from rules.event_properties import properties_of
from rules.expressions import Condition, ConditionError, compile_condition
from rules.journey_names import JourneyNames
from rules.profile_view import SAMPLE_VIEW
from rules.routing_spec import AnswerSpec, CategorySpec, RoutingSpec, SolutionsSpec
from schemas.events import TicketOpened, TicketOpenedProperties
from state.profile import Profile

PRIORITY_ORDER: Final = ("low", "normal", "high", "urgent")
BANDS: Final = ("very_negative", "negative", "neutral", "positive", "unscored")


def raised(priority: str, levels: int) -> str:
    return PRIORITY_ORDER[min(len(PRIORITY_ORDER) - 1, _rank(priority) + levels)]


def sentiment_band(
    score: float | None, very_negative: float, negative: float, positive: float
) -> str:
    """The band of ``score`` (``BANDS``) under these bounds; None is ``unscored``."""
    if score is None:
        return "unscored"
    if score <= very_negative:
        return "very_negative"
    if score <= negative:
        return "negative"
    return "positive" if score >= positive else "neutral"


class TicketRouted(
    msgspec.Struct,
    kw_only=True,
    frozen=True,
    tag="ticket_routed",
    tag_field="record",
    omit_defaults=True,
):
    """What routing decided for a new ticket, and why (on the ``changes`` stream)."""

    decision_id: str
    profile_key: str
    customer_id: str | None
    ticket_id: str
    at: float
    #: The ``support.ticket_opened`` event.
    cause: str
    category: str
    #: ``event`` (the help desk set it), ``keyword``, ``topic`` or ``default``.
    category_by: str
    keyword: str | None = None
    queue: str
    #: The rule id that chose the queue, or ``event`` / ``default``.
    queue_rule: str
    priority: str
    requested_priority: str
    #: The rule id that changed the priority; None: unchanged.
    priority_rule: str | None = None
    sentiment: float | None = None
    band: str
    language: str | None = None
    #: Suggested answers (ids in solutions.yaml) for the agent.
    answers: list[str] = []


#: A ticket's category is read from the opening of its text: the subject and the first
#: part of the body say what it is about, and a long body cannot make routing slow (a
#: full routing.yaml, 50 categories of 200 keywords, takes at most about 20 ms).
MAX_CLASSIFIED_CHARS: Final = 2000


@dataclass(frozen=True)
class Category:
    id: str
    answers: tuple[str, ...]
    #: The keywords, lower-cased, each with whether it must start a word (a Latin one).
    keywords: tuple[tuple[str, bool], ...]

    def first_keyword(self, lowered: str) -> str | None:
        """The keyword found first in ``lowered`` (the longest, of those found there)."""
        best: tuple[int, int, str] | None = None
        for word, starts_a_word in self.keywords:
            at = lowered.find(word)
            while at != -1 and starts_a_word and at and _word_char(lowered[at - 1]):
                at = lowered.find(word, at + 1)
            if at != -1 and (best is None or (at, -len(word)) < best[:2]):
                best = (at, -len(word), word)
        return None if best is None else best[2]


def _word_char(char: str) -> bool:
    return char.isascii() and char.isalnum()


@dataclass(frozen=True)
class RoutingRule:
    id: str
    when: Condition
    queue: str | None
    priority: str | None
    min_priority: str | None
    raise_priority: int | None

    def priority_of(self, current: str) -> str | None:
        """The priority this rule gives a ticket at ``current``; None: it sets none."""
        if self.priority is not None:
            return self.priority
        if self.min_priority is not None:
            return max(current, self.min_priority, key=_rank)
        if self.raise_priority is not None:
            return raised(current, self.raise_priority)
        return None


def _rank(priority: str) -> int:
    return PRIORITY_ORDER.index(priority) if priority in PRIORITY_ORDER else 1


@dataclass(frozen=True)
class Routing:
    very_negative: float
    negative: float
    positive: float
    categories: tuple[Category, ...]
    default_category: str
    queues: tuple[str, ...]
    default_queue: str
    rules: tuple[RoutingRule, ...]
    answers: Mapping[str, AnswerSpec]

    def band(self, score: float | None) -> str:
        return sentiment_band(score, self.very_negative, self.negative, self.positive)

    def classify(self, text: str | None, topic: str | None) -> tuple[str, str, str | None]:
        """(category, what chose it, the keyword found) for a ticket without one."""
        if text:
            lowered = text[:MAX_CLASSIFIED_CHARS].lower()
            for category in self.categories:
                found = category.first_keyword(lowered)
                if found is not None:
                    return category.id, "keyword", found
        if topic is not None and any(c.id == topic for c in self.categories):
            return topic, "topic", None
        return self.default_category, "default", None

    def answers_for(self, category: str) -> list[str]:
        for known in self.categories:
            if known.id == category:
                return list(known.answers)
        return []

    def route(
        self, profile: Profile, props: TicketOpenedProperties
    ) -> tuple[str, str, str, str | None]:
        """(queue, its rule, priority, its rule) for a ticket whose ``props`` already carry
        its category and sentiment; ``profile`` is the customer before the ticket."""
        names = JourneyNames(profile, props)
        queue: str | None = None
        queue_rule = priority_rule = None
        priority: str = props.priority
        for rule in self.rules:
            wants_queue = queue is None and rule.queue is not None
            wants_priority = priority_rule is None and rule.priority_of(priority) is not None
            if not (wants_queue or wants_priority) or not rule.when(names):
                continue
            if wants_queue:
                queue, queue_rule = rule.queue, rule.id
            if wants_priority:
                priority, priority_rule = rule.priority_of(priority) or priority, rule.id
        if queue is None:
            known = props.queue is not None and props.queue in self.queues
            queue = props.queue if known and props.queue else self.default_queue
            queue_rule = "event" if known else "default"
        return queue, queue_rule or "default", priority, priority_rule


def _category(spec: CategorySpec) -> Category:
    words = dict.fromkeys(w.lower() for w in spec.keywords.zh + spec.keywords.en)
    return Category(spec.id, tuple(spec.answers), tuple((w, _word_char(w[0])) for w in words))


class RoutingError(ValueError):
    """A mistake in routing.yaml found when compiling it, with where it is (``loc``)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def compile_routing(spec: RoutingSpec, solutions: SolutionsSpec | None = None) -> Routing:
    """Compile ``spec``; raise ``RoutingError`` for every mistake the models cannot see: a
    condition that does not check, an answer that ``solutions`` does not have."""
    sample = dict(SAMPLE_VIEW)
    sample["event"] = SimpleNamespace(**properties_of(TicketOpened))
    known = {answer.id for answer in (solutions.answers if solutions else [])}
    for index, category in enumerate(spec.categories):
        missing = [a for a in category.answers if a not in known]
        if missing:
            raise RoutingError(
                ("categories", index, "answers"),
                f"answers {missing} are not in solutions.yaml"
                + (f" (it has {sorted(known)})" if known else " (there is no solutions.yaml)"),
            )
    rules = []
    for index, rule in enumerate(spec.rules):
        loc = ("rules", index, "when")
        try:
            when = compile_condition(rule.when, sample, f"routing:{rule.id}", loc)
        except ConditionError as error:
            raise RoutingError(loc, str(error)) from error
        rules.append(
            RoutingRule(
                rule.id, when, rule.queue, rule.priority, rule.min_priority, rule.raise_priority
            )
        )
    bands = spec.sentiment_bands
    return Routing(
        bands.very_negative,
        bands.negative,
        bands.positive,
        tuple(_category(c) for c in spec.categories),
        spec.default_category,
        tuple(spec.queues),
        spec.default_queue,
        tuple(rules),
        {answer.id: answer for answer in (solutions.answers if solutions else [])},
    )
