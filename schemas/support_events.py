"""Support events: tickets, replies, resolutions, ratings and reviews, with the text
customers and agents write (subject, body, comment; language if known).

Text is personal data. It is bounded here (``MAX_SUBJECT_CHARS``, ``MAX_BODY_CHARS``;
longer is refused with the field named, and dead-lettered), read once when the event is
applied (sentiment, classification: ``sentiment/``, ``rules/routing.py``), and not kept on
the profile beyond what ``support.keep_text_chars`` allows (docs/privacy.md).

``sentiment`` (-1..1) may come with the event, from a scorer upstream or from Rapport's own
off-the-hot-path stage; Rapport scores the text itself when it is absent.

>>> import msgspec
>>> props = msgspec.convert({"ticket_id": "t1", "subject": "退款还没到", "body": "我要投诉"},
...                         TicketOpenedProperties)
>>> props.scored_text()
'退款还没到\\n我要投诉'
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from msgspec import Meta

from schemas.envelope import Envelope, Id, Priority, Properties

MAX_SUBJECT_CHARS: Final = 512
MAX_BODY_CHARS: Final = 20_000

Subject = Annotated[str, Meta(max_length=MAX_SUBJECT_CHARS)]
Body = Annotated[str, Meta(max_length=MAX_BODY_CHARS)]
#: A BCP 47 language tag: ``zh``, ``zh-CN``, ``en-GB`` (``_`` allowed for ``zh_CN``).
LANGUAGE_TAG_PATTERN: Final = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8}){0,4}$"
LanguageTag = Annotated[str, Meta(pattern=LANGUAGE_TAG_PATTERN, max_length=35)]
Sentiment = Annotated[float, Meta(ge=-1.0, le=1.0, description="-1 negative .. 1 positive")]
Label = Annotated[str, Meta(min_length=1, max_length=64)]


def _joined(*parts: str | None) -> str | None:
    text = "\n".join(part for part in parts if part)
    return text or None


class TicketOpenedProperties(Properties, frozen=True):
    ticket_id: Id
    #: As the help desk set it. Routing (``rules/routing.yaml``) may change it; journeys
    #: and the SLA clock then read the routed priority here.
    priority: Priority = "normal"
    topic: Label | None = None
    is_complaint: bool = False
    order_id: Id | None = None
    subject: Subject | None = None
    body: Body | None = None
    language: LanguageTag | None = None
    sentiment: Sentiment | None = None
    #: As the help desk set it; when absent, routing classifies the ticket from its text.
    category: Label | None = None
    #: The queue routing chose (set by Rapport; a queue that comes with the event is kept
    #: when no routing rule names one).
    queue: Label | None = None

    def scored_text(self) -> str | None:
        return _joined(self.subject, self.body)


class TicketOpened(Envelope, tag="support.ticket_opened", frozen=True):
    properties: TicketOpenedProperties


class TicketRepliedProperties(Properties, frozen=True):
    ticket_id: Id
    #: Only agent replies count as a response for the first-response time.
    author: Literal["agent", "customer"] = "agent"
    body: Body | None = None
    language: LanguageTag | None = None
    sentiment: Sentiment | None = None

    def scored_text(self) -> str | None:
        return self.body or None


class TicketReplied(Envelope, tag="support.ticket_replied", frozen=True):
    properties: TicketRepliedProperties


class TicketResolvedProperties(Properties, frozen=True):
    ticket_id: Id


class TicketResolved(Envelope, tag="support.ticket_resolved", frozen=True):
    properties: TicketResolvedProperties


class SatisfactionRatedProperties(Properties, frozen=True):
    ticket_id: Id | None = None
    csat: Annotated[int, Meta(ge=1, le=5)] | None = None
    nps: Annotated[int, Meta(ge=0, le=10)] | None = None
    comment: Annotated[str, Meta(max_length=2000)] | None = None
    language: LanguageTag | None = None
    sentiment: Sentiment | None = None

    def __post_init__(self) -> None:
        if self.csat is None and self.nps is None:
            raise ValueError("a rating needs `csat` (1-5) or `nps` (0-10)")

    def scored_text(self) -> str | None:
        return self.comment or None


class SatisfactionRated(Envelope, tag="support.satisfaction_rated", frozen=True):
    properties: SatisfactionRatedProperties


class ReviewSubmittedProperties(Properties, frozen=True):
    product_id: Id
    rating: Annotated[int, Meta(ge=1, le=5)]
    order_id: Id | None = None
    title: Subject | None = None
    body: Body | None = None
    language: LanguageTag | None = None
    sentiment: Sentiment | None = None

    def scored_text(self) -> str | None:
        return _joined(self.title, self.body)


class ReviewSubmitted(Envelope, tag="review.submitted", frozen=True):
    properties: ReviewSubmittedProperties
