"""``routing.yaml`` and ``solutions.yaml`` as service managers write them: ticket
categories (keywords in Chinese and English, suggested answers), queues, sentiment bands
and the routing rules; and the library of answers agents are pointed to. Validated here
(pydantic, with the JSON Schemas in ``rules/schema/`` made from these models); compiled
in ``rules/routing.py``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.envelope import Priority

ROUTING_FILE = "routing.yaml"
SOLUTIONS_FILE = "solutions.yaml"

Ident = Annotated[str, StringConstraints(pattern="^[a-z][a-z0-9_]{0,47}$")]
Keyword = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SentimentBandsSpec(_Spec):
    """Where sentiment (-1..1) turns from one band to the next, for reports and rules."""

    very_negative: float = Field(-0.6, ge=-1, le=1, description="At or below: very negative.")
    negative: float = Field(-0.25, ge=-1, le=1, description="At or below: negative.")
    positive: float = Field(0.25, ge=-1, le=1, description="At or above: positive.")

    @model_validator(mode="after")
    def _ordered(self) -> SentimentBandsSpec:
        if not self.very_negative <= self.negative < self.positive:
            raise ValueError("sentiment bands need very_negative <= negative < positive")
        return self


class KeywordsSpec(_Spec):
    """Words or phrases; a ticket whose subject or body holds one is of the category.
    Case does not matter; a Latin keyword must start a word (``refund`` finds "refunds",
    not "prefund")."""

    zh: list[Keyword] = Field(default_factory=list, max_length=100)
    en: list[Keyword] = Field(default_factory=list, max_length=100)


class CategorySpec(_Spec):
    id: Ident
    description: str = ""
    keywords: KeywordsSpec = Field(default_factory=KeywordsSpec)
    answers: list[Ident] = Field(
        default_factory=list,
        max_length=5,
        description="Suggested answers (ids in solutions.yaml) for the agent.",
    )


class RoutingRuleSpec(_Spec):
    """A condition, and what it decides: a queue, a priority, or both."""

    id: Ident
    description: str = ""
    when: str = Field(
        description="A condition on the profile's names and the ticket (event.category, "
        "event.sentiment, event.priority, event.is_complaint, event.topic, event.language)."
    )
    queue: Ident | None = Field(None, description="Send the ticket to this queue.")
    priority: Priority | None = Field(None, description="Set the priority to exactly this.")
    min_priority: Priority | None = Field(None, description="Raise the priority to at least this.")
    raise_priority: int | None = Field(
        None, ge=1, le=3, description="Raise the priority by this many levels (up to urgent)."
    )

    @model_validator(mode="after")
    def _decides(self) -> RoutingRuleSpec:
        forms = [self.priority, self.min_priority, self.raise_priority]
        if sum(form is not None for form in forms) > 1:
            raise ValueError(
                "a rule sets the priority one way: priority, min_priority or raise_priority"
            )
        if self.queue is None and all(form is None for form in forms):
            raise ValueError("a rule decides something: a queue or a priority")
        return self


class RoutingSpec(_Spec):
    sentiment_bands: SentimentBandsSpec = Field(default_factory=SentimentBandsSpec)
    categories: list[CategorySpec] = Field(default_factory=list, max_length=50)
    default_category: Ident = "general"
    queues: list[Ident] = Field(min_length=1, max_length=50)
    default_queue: Ident
    rules: list[RoutingRuleSpec] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> RoutingSpec:
        for kind, ids in (
            ("category", [c.id for c in self.categories] + [self.default_category]),
            ("queue", self.queues),
            ("rule", [r.id for r in self.rules]),
        ):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            if repeated:
                raise ValueError(f"duplicate {kind} ids: {repeated}")
        if self.default_queue not in self.queues:
            raise ValueError(f"default_queue {self.default_queue!r} is not one of queues")
        for rule in self.rules:
            if rule.queue is not None and rule.queue not in self.queues:
                raise ValueError(
                    f"rule {rule.id!r} sends to queue {rule.queue!r}, which is not one of "
                    f"queues {self.queues}"
                )
        return self


class AnswerSpec(_Spec):
    id: Ident
    title: dict[
        Annotated[str, StringConstraints(max_length=16)],
        Annotated[str, StringConstraints(min_length=1, max_length=200)],
    ] = Field(min_length=1, description="The answer's title per locale (en, zh-CN, ...).")
    url: Annotated[str, StringConstraints(pattern="^https?://", max_length=2048)] | None = None


class SolutionsSpec(_Spec):
    answers: list[AnswerSpec] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _unique(self) -> SolutionsSpec:
        ids = [a.id for a in self.answers]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"duplicate answer ids: {repeated}")
        return self
