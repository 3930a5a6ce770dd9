"""Business KPIs the engine tallies as it applies events (``state/kpis.py``)."""

from __future__ import annotations

from engine import Engine
from rules.loader import RuleSet
from schemas.events import Event
from state.kpis import KpiCounts
from state.policy import ProfilePolicy, SupportPolicy
from state.population import population
from state.stores import MemoryProfileStore
from tests.builders import IMMEDIATE, added, at, event, ordered, viewed


def _engine(policy: ProfilePolicy | None = None) -> Engine:
    return Engine(MemoryProfileStore(), RuleSet.empty(), policy, IMMEDIATE)


def _run(*events: Event, engine: Engine | None = None) -> KpiCounts:
    engine = engine or _engine()
    for item in events:
        engine.apply(item)
    return engine.kpis.counts


def test_the_funnel_counts_each_step_once_per_purchase_cycle() -> None:
    counts = _run(
        viewed("p1", when=at(0)),
        viewed("p2", when=at(0, minutes=1)),  # the same cycle
        added("k1", "p1", when=at(0, minutes=2)),
        added("k1", "p2", when=at(0, minutes=3)),
        event("checkout.started", when=at(0, minutes=4), cart_id="k1"),
        event("checkout.started", when=at(0, minutes=5), cart_id="k1"),
        ordered("o1", cart="k1", when=at(0, minutes=6)),
        viewed("p3", when=at(1)),  # a new cycle after the order
        added("k2", "p3", when=at(1, minutes=1)),
    )
    assert dict(counts.funnel) == {"viewed": 2, "carted": 2, "checkout": 1, "ordered": 1}


def test_a_cart_abandoned_and_a_new_one_filled_before_an_order_are_one_cycle() -> None:
    counts = _run(
        viewed("p1", when=at(0)),
        added("k1", "p1", when=at(0, 1)),
        event("cart.cleared", when=at(0, 2), cart_id="k1"),
        viewed("p1", when=at(5)),
        added("k2", "p1", when=at(5, 1)),
        ordered("o1", cart="k2", when=at(5, 2)),
    )
    assert dict(counts.funnel) == {"viewed": 1, "carted": 1, "ordered": 1}


def test_first_and_second_orders_count_customers_becoming_buyers_and_repeat_buyers() -> None:
    counts = _run(
        ordered("o1", when=at(0)),
        ordered("o1", when=at(0, 1)),  # the same order under another event id
        ordered("o2", when=at(3)),
        ordered("o3", when=at(9)),
        ordered("o9", when=at(1), customer="c2"),
    )
    assert (counts.first_orders, counts.second_orders, counts.funnel["ordered"]) == (2, 1, 4)


def test_a_redelivered_event_is_not_counted_twice() -> None:
    engine = _engine()
    rating = event("support.satisfaction_rated", when=at(0), event_id="r1", csat=2, nps=3)
    _run(rating, rating, ordered("o1", when=at(1), event_id="x"), engine=engine)
    counts = _run(ordered("o1", when=at(1), event_id="x"), engine=engine)
    assert (dict(counts.csat), dict(counts.nps), counts.first_orders) == (
        {2: 1},
        {"detractor": 1},
        1,
    )


def test_first_responses_are_judged_against_the_sla_of_their_priority() -> None:
    counts = _run(
        event("support.ticket_opened", when=at(0), ticket_id="t1", priority="urgent"),
        event("support.ticket_replied", when=at(0, 2), ticket_id="t1"),  # 2h > 1h: missed
        event("support.ticket_replied", when=at(0, 3), ticket_id="t1"),  # not the first
        event("support.ticket_opened", when=at(1), ticket_id="t2", is_complaint=True),
        event("support.ticket_replied", when=at(1, 1), ticket_id="t2", author="customer"),
        event("support.ticket_replied", when=at(1, 20), ticket_id="t2"),  # 20h <= 24h: met
    )
    urgent, normal = counts.first_responses["urgent"], counts.first_responses["normal"]
    assert (urgent.met, urgent.missed, urgent.seconds) == (0, 1, 7200.0)
    assert (normal.met, normal.missed, normal.seconds) == (1, 0, 72000.0)
    assert dict(counts.tickets_opened) == {("urgent", False): 1, ("normal", True): 1}


def test_the_sla_targets_come_from_the_support_policy() -> None:
    policy = ProfilePolicy(
        support=SupportPolicy(
            first_response_sla_hours={"urgent": 3, "high": 4, "normal": 24, "low": 72}
        )
    )
    counts = _run(
        event("support.ticket_opened", when=at(0), ticket_id="t1", priority="urgent"),
        event("support.ticket_replied", when=at(0, 2), ticket_id="t1"),
        engine=_engine(policy),
    )
    assert counts.first_responses["urgent"].met == 1


def test_a_reply_that_arrives_before_its_ticket_is_timed_when_the_ticket_comes() -> None:
    engine = _engine()
    engine.apply(event("support.ticket_replied", when=at(0, 5), ticket_id="t1"))
    engine.apply(event("support.ticket_opened", when=at(0), ticket_id="t1", priority="high"))
    high = engine.kpis.counts.first_responses["high"]
    assert (high.missed, high.seconds) == (1, 5 * 3600.0)


def test_the_summary_gives_conversion_repeat_csat_nps_sla_and_complaint_figures() -> None:
    counts = _run(
        viewed(when=at(0)),
        added("k1", when=at(0, 1)),
        ordered("o1", cart="k1", when=at(0, 2)),
        ordered("o2", when=at(2)),
        event("support.ticket_opened", when=at(3), ticket_id="t1", is_complaint=True),
        event("support.ticket_replied", when=at(3, 1), ticket_id="t1"),
        event("support.satisfaction_rated", when=at(4), csat=4, nps=10),
        event("support.satisfaction_rated", when=at(4), csat=2, nps=5),
    )
    summary = counts.summary()
    assert summary["conversion"] == {
        "viewed->carted": 1.0,
        "carted->checkout": 0.0,
        "checkout->ordered": None,
    }
    assert summary["complaints_per_100_orders"] == 50.0
    assert (summary["csat_average"], summary["nps"]) == (3.0, 0.0)
    assert summary["first_response_sla"]["normal"] == {
        "responses": 1,
        "met": 1,
        "met_share": 1.0,
        "mean_hours": 1.0,
    }


def test_the_population_counts_customers_by_stage_tier_and_repeat_buying() -> None:
    engine = _engine()
    _run(
        ordered("o1", when=at(0)),
        ordered("o2", when=at(1)),
        ordered("o3", when=at(1), customer="c2"),
        viewed(when=at(1), customer=None, anonymous="v1"),
        engine=engine,
    )
    base = population(engine.store.profiles())
    assert (base.customers, base.visitors, base.buyers, base.repeat_buyers) == (2, 1, 2, 1)
    assert base.repeat_rate == 0.5
    assert dict(base.stages) == {"active": 1, "new": 1}
    assert dict(base.tiers) == {"member": 2}


def test_counts_of_released_engines_stay_in_a_workers_totals() -> None:
    from streams.partitions import PartitionEngines

    engines = PartitionEngines(RuleSet.empty(), config=IMMEDIATE)
    line = (
        b'{"type":"order.placed","event_id":"e1","customer_id":"c1",'
        b'"occurred_at":"2026-01-05T10:00:00Z","properties":{"order_id":"o1","total":30}}'
    )
    engines.handle(3, line, "t", now=1.9e9)
    engines.release([3])
    assert engines.kpis().first_orders == 1
    assert engines.population().customers == 0
