"""The service desk stage in the engine: text read once, the decision on the event and on
the profile, the same ticket opened again keeping its routing, text not kept by default,
and a score that came with the event trusted."""

from __future__ import annotations

from pathlib import Path

from engine import Engine, EngineConfig
from rules.loader import load_rules
from rules.routing import TicketRouted
from state.policy import PrivacyPolicy, ProfilePolicy
from state.stores import MemoryProfileStore
from tests.builders import at, event

RULES = load_rules(Path(__file__).resolve().parents[2] / "rules")


def _engine(policy: ProfilePolicy | None = None) -> Engine:
    return Engine(
        MemoryProfileStore(), RULES, policy, config=EngineConfig(allowed_lateness_seconds=0)
    )


def test_a_new_ticket_is_scored_routed_and_its_decision_kept_on_the_profile() -> None:
    engine = _engine()
    outputs = engine.apply(
        event("support.ticket_opened", when=at(1), ticket_id="t1", subject="退款还没到，我要投诉")
    )
    routed = [o for o in outputs if isinstance(o, TicketRouted)]
    assert len(routed) == 1
    decision = routed[0]
    assert (decision.category, decision.queue, decision.priority) == (
        "refund",
        "complaints",
        "high",
    )
    assert (decision.queue_rule, decision.priority_rule) == (
        "complaints_desk",
        "very_negative_is_at_least_high",
    )
    assert decision.answers == ["refund_timeline", "return_label"]
    profile = engine.store.get("c1")
    assert profile is not None
    ticket = profile.support.tickets["t1"]
    assert (ticket.category, ticket.queue, ticket.priority) == ("refund", "complaints", "high")
    assert ticket.sentiment is not None
    assert ticket.sentiment < -0.6
    assert ticket.excerpt is None  # no text kept by default
    assert profile.support.sentiment_recent == ticket.sentiment


def test_the_same_ticket_opened_again_keeps_its_first_routing() -> None:
    engine = _engine()
    engine.apply(event("support.ticket_opened", when=at(1), ticket_id="t1", subject="我要投诉"))
    again = engine.apply(
        event(
            "support.ticket_opened", when=at(2), ticket_id="t1", subject="question", priority="low"
        )
    )
    assert not [o for o in again if isinstance(o, TicketRouted)]
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.support.tickets["t1"].priority == "high"
    assert profile.support.sentiment_count == 1


def test_a_score_that_comes_with_the_event_is_used_as_it_is() -> None:
    engine = _engine()
    engine.apply(
        event("review.submitted", when=at(1), product_id="p1", rating=5, body="bad", sentiment=0.9)
    )
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.support.sentiment_recent == 0.9


def test_agent_replies_are_scored_but_are_not_the_customers_sentiment() -> None:
    engine = _engine()
    engine.apply(
        event("support.ticket_opened", when=at(1), ticket_id="t1", subject="Where is my parcel?")
    )
    engine.apply(
        event(
            "support.ticket_replied",
            when=at(2),
            ticket_id="t1",
            author="agent",
            body="Sorry, awful delay!",
        )
    )
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.support.sentiment_count == 1
    texts = engine.kpis.counts.service.texts
    assert sum(n for (kind, _, _), n in texts.items() if kind == "reply") == 1


def test_with_keep_text_chars_the_opening_of_the_subject_is_kept_and_erased_with_the_profile() -> (
    None
):
    engine = _engine(ProfilePolicy(privacy=PrivacyPolicy(keep_text_chars=8)))
    engine.apply(
        event("support.ticket_opened", when=at(1), ticket_id="t1", subject="Parcel never arrived")
    )
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.support.tickets["t1"].excerpt == "Parcel n"
    engine.apply(event("customer.erasure_requested", when=at(2)))
    assert engine.store.get("c1") is None


def test_a_long_body_is_classified_by_its_opening_only() -> None:
    engine = _engine()
    body = "x " * 1500 + "refund"  # the keyword is past the first 2,000 characters
    outputs = engine.apply(
        event("support.ticket_opened", when=at(1), ticket_id="t1", subject="Hello", body=body)
    )
    routed = [o for o in outputs if isinstance(o, TicketRouted)]
    assert [(d.category, d.category_by) for d in routed] == [("general", "default")]
