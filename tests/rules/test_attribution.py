"""Coupon redemption matched to the send that issued it, revenue credited to conversions,
and the report's coupon, revenue and per-arm figures."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine import Engine
from rules.actions import Action, JourneyMilestone
from rules.journey_report import JourneyReport
from rules.lift import MeanArm, t_quantile, welch_interval
from state.kpis import KpiCounts
from state.population import Population
from streams.edge_counts import EdgeCounts
from tests.builders import added, at, ordered
from tests.rules.journey_builders import consent, journey_engine, milestones, rules_dir, sends


def _coupon_send(engine: Engine) -> tuple[Action, list[object]]:
    """Consent, a cart left on day 1, and both reminders: the second carries the coupon."""
    out: list[object] = []
    out += engine.apply(consent(when=at(0)))
    out += engine.apply(added("k1", when=at(1)))
    out += engine.advance(at(2, 2).timestamp())
    coupon_send = sends(out)[1]
    assert coupon_send.coupon is not None
    return coupon_send, out


def test_an_order_using_the_code_redeems_it_for_the_send_journey_and_arm(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    send, _ = _coupon_send(engine)
    assert send.coupon is not None
    code = send.coupon.code
    out = engine.apply(
        ordered("o1", total=54.0, cart="k1", coupon=f" {code.lower()} ", when=at(2, 3))
    )
    (redeemed,) = milestones(out, "coupon_redeemed")
    assert (redeemed.action_id, redeemed.journey_id, redeemed.arm, redeemed.run_id) == (
        send.action_id,
        "cart_recovery",
        send.arm,
        milestones(out, "converted")[0].run_id,
    )
    assert (redeemed.coupon, redeemed.value, redeemed.entity) == (code, 54.0, "k1")
    # 10% off, no items and no discount on the order: 54 is 90% of 60
    assert redeemed.discount == 6.0


def test_a_coupon_is_redeemed_once_and_only_by_its_own_code(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    send, _ = _coupon_send(engine)
    assert send.coupon is not None
    assert (
        milestones(
            engine.apply(ordered("o0", coupon="RP-NOTOURS", when=at(2, 3))), "coupon_redeemed"
        )
        == []
    )
    first = engine.apply(ordered("o1", coupon=send.coupon.code, when=at(2, 4)))
    again = engine.apply(ordered("o2", coupon=send.coupon.code, when=at(2, 5)))
    assert len(milestones(first, "coupon_redeemed")) == 1
    assert milestones(again, "coupon_redeemed") == []


def test_a_coupon_is_matched_up_to_30_days_after_it_stopped_being_valid(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    send, _ = _coupon_send(engine)
    assert send.coupon is not None
    lapsed = datetime.fromtimestamp(send.coupon.valid_until + 30 * 86_400 + 1, UTC)
    out = engine.apply(ordered("o1", coupon=send.coupon.code, when=lapsed))
    assert milestones(out, "coupon_redeemed") == []
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.journeys.coupons == []


def test_a_late_order_within_the_allowance_still_redeems(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    send, _ = _coupon_send(engine)
    assert send.coupon is not None
    late = datetime.fromtimestamp(send.coupon.valid_until + 29 * 86_400, UTC)
    out = engine.apply(ordered("o1", coupon=send.coupon.code, when=late))
    assert len(milestones(out, "coupon_redeemed")) == 1


def test_the_orders_own_discount_is_the_discount_given(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    send, _ = _coupon_send(engine)
    assert send.coupon is not None
    out = engine.apply(
        ordered("o1", total=50.0, coupon=send.coupon.code, discount=7.5, when=at(2, 3))
    )
    assert milestones(out, "coupon_redeemed")[0].discount == 7.5


def test_an_order_before_the_send_does_not_redeem_the_code(tmp_path: Path) -> None:
    """Event time decides: a code cannot be used before the customer was sent it."""
    engine = journey_engine(rules_dir(tmp_path))
    send, _ = _coupon_send(engine)
    assert send.coupon is not None
    from rules.attribution import redeem
    from schemas.events import OrderPlacedProperties

    profile = engine.store.get("c1")
    assert profile is not None
    early = OrderPlacedProperties(order_id="o9", total=10.0, coupon=send.coupon.code)
    assert redeem(profile.journeys, "c1", early, "e", send.at - 1) is None


def test_a_converting_order_credits_its_total_to_the_run(tmp_path: Path) -> None:
    engine = journey_engine(rules_dir(tmp_path))
    engine.apply(consent(when=at(0)))
    engine.apply(added("k1", when=at(1)))
    out = engine.apply(ordered("o1", total=42.5, cart="k1", when=at(1, 2)))
    out += engine.advance(at(5).timestamp())
    (converted,) = milestones(out, "converted")
    assert converted.value == 42.5


def test_the_stored_profile_keeps_the_issued_coupon_so_a_restart_still_matches(
    tmp_path: Path,
) -> None:
    import msgspec

    from state.profile import Profile

    engine = journey_engine(rules_dir(tmp_path))
    send, _ = _coupon_send(engine)
    profile = engine.store.get("c1")
    assert profile is not None
    again = msgspec.json.decode(msgspec.json.encode(profile), type=Profile)
    (kept,) = again.journeys.coupons
    assert (kept.action_id, kept.code) == (send.action_id, send.coupon.code if send.coupon else "")


def _coupon_sent() -> Action:
    """A sent action of journey ``j``, arm ``a``, with a coupon."""
    from rules.actions import Coupon

    return Action(
        action_id="x1", status="sent", kind="send", journey_id="j", step=1, arm="a",
        profile_key="c1", customer_id="c1", entity=None, trigger="t", at=0.0,
        coupon=Coupon(code="RP-1", percent=10, valid_until=1.0),
    )  # fmt: skip


def _milestone(kind: str, run: str, arm: str, **extra: object) -> JourneyMilestone:
    made = JourneyMilestone.make(kind, "j", run, arm, run, None, 0.0, "e")  # type: ignore[arg-type]
    import msgspec

    return msgspec.structs.replace(made, **extra)


def test_the_report_gives_revenue_per_customer_coupons_and_each_variant() -> None:
    report = JourneyReport()
    outputs: list[object] = []
    arms = ["holdout", "a", "b", "a", "b"] * 8  # 8 holdout, 16 a, 16 b
    for number, arm in enumerate(arms):
        run = f"r{number}"
        outputs.append(_milestone("entered", run, arm))
        if number % 2 == 0:
            outputs.append(_milestone("converted", run, arm, value=10.0 + number))
    outputs.append(_milestone("coupon_redeemed", "r1", "a", value=30.0, discount=3.0))
    report.count_all(outputs)
    (row,) = report.rows()
    arms_row = row["arms"]
    assert isinstance(arms_row, dict)
    assert set(arms_row) == {"holdout", "a", "b"}
    assert "lift_interval" in arms_row["a"]
    assert "lift_interval" not in arms_row["holdout"]
    coupons = row["coupons"]
    assert isinstance(coupons, dict)
    assert (coupons["redeemed"], coupons["discount"], coupons["revenue"]) == (1, 3.0, 30.0)
    revenue = row["revenue_per_customer"]
    assert isinstance(revenue, dict)
    held = [10.0 + n if n % 2 == 0 else 0.0 for n, a in enumerate(arms) if a == "holdout"]
    treated = [10.0 + n if n % 2 == 0 else 0.0 for n, a in enumerate(arms) if a != "holdout"]
    assert revenue["holdout"] == round(sum(held) / len(held), 2)
    assert revenue["treated"] == round(sum(treated) / len(treated), 2)


# scipy 1.17: ttest_ind(x, y, equal_var=False).confidence_interval(0.95) and .df, for
# (n, sum, sum of squares) of each sample: revenue with many zeros (200 and 50 values),
# the small textbook pair [1, 2, 3] / [4, 5, 6], and two samples of 7 and 5 values.
WELCH = [
    ((200, 981.56, 66566.9604), (50, 185.5, 8955.25), (-3.20586, 5.60146, 99.2527)),
    ((3, 6.0, 14.0), (3, 15.0, 77.0), (-5.26696, -0.73304, 4.0)),
    ((7, 150.2, 3258.84), (5, 87.9, 1560.71), (1.02542, 6.72887, 9.7779)),
]


@pytest.mark.parametrize(("treated", "holdout", "expected"), WELCH)
def test_the_revenue_interval_is_welchs_as_scipy_gives_it(
    treated: tuple[int, float, float],
    holdout: tuple[int, float, float],
    expected: tuple[float, float, float],
) -> None:
    estimate = welch_interval(MeanArm(*treated), MeanArm(*holdout))
    assert estimate is not None
    low, high, df = expected
    assert estimate.df == pytest.approx(df, abs=1e-3)
    # the t quantile's expansion is within 0.13% of the exact one from 3 degrees of freedom
    assert estimate.low == pytest.approx(low, rel=2e-3)
    assert estimate.high == pytest.approx(high, rel=2e-3)


@pytest.mark.parametrize(
    ("df", "exact"),
    [(3, 3.182446), (5, 2.570582), (10, 2.228139), (30, 2.042272), (1000, 1.962339)],
)
def test_the_t_quantile_is_close_to_the_exact_one(df: float, exact: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(exact, rel=1.3e-3)


def test_no_revenue_interval_from_a_single_run_or_under_three_degrees_of_freedom() -> None:
    assert welch_interval(MeanArm(1, 5.0, 25.0), MeanArm(10, 10.0, 20.0)) is None
    assert welch_interval(MeanArm(2, 0.0, 0.0), MeanArm(2, 10.0, 100.0)) is None  # df 1


def test_the_replay_summary_prints_revenue_coupons_and_each_variant() -> None:
    from streams.replay import _render_journeys

    report = JourneyReport()
    outputs: list[object] = []
    for number, arm in enumerate(["holdout", "a", "b", "a", "b"] * 6):
        outputs.append(_milestone("entered", f"r{number}", arm))
        if number % 3 == 0:
            outputs.append(_milestone("converted", f"r{number}", arm, value=20.0 + number))
    sent = _coupon_sent()
    outputs += [sent, _milestone("coupon_redeemed", "r1", "a", value=45.0, discount=5.0)]
    report.count_all(outputs)
    text = "\n".join(_render_journeys(report.rows()))
    assert "revenue per customer" in text
    assert "95% CI" in text
    assert "coupons: 1 issued, 1 redeemed (100.0%), discount 5.00" in text
    assert "variant a: converted" in text
    assert "variant b: converted" in text
    assert "all journeys' coupons: 1 issued" in text


def test_the_edge_counts_give_coupon_and_revenue_metrics() -> None:
    from streams.metrics import engine_metrics

    counts = EdgeCounts()
    sent = _coupon_sent()
    counts.count_outputs(
        [
            sent,
            _milestone("converted", "r1", "a", value=40.0),
            _milestone("coupon_redeemed", "r1", "a", value=40.0, discount=4.5),
        ]
    )
    assert counts.journey_value == {
        ("j", "a", "coupons_issued"): 1,
        ("j", "a", "revenue"): 40.0,
        ("j", "a", "coupon_revenue"): 40.0,
        ("j", "a", "coupon_discount"): 4.5,
    }
    families = {f.name: f for f in engine_metrics(_Tallies(counts))}
    (discount,) = families["rapport_coupon_discount"].samples
    assert (discount.labels, discount.value) == ({"journey": "j", "arm": "a"}, 4.5)
    (issued,) = families["rapport_coupons_issued"].samples
    assert issued.value == 1
    assert families["rapport_journey_revenue"].samples[0].value == 40.0


class _Tallies:
    """A runner with only these edge counts (``streams/metrics.py: Tallies``)."""

    def __init__(self, counts: EdgeCounts) -> None:
        self.counts = counts

    def duplicates(self) -> int:
        return 0

    def late(self) -> int:
        return 0

    def profiles(self) -> int:
        return 0

    def kpis(self) -> KpiCounts:
        return KpiCounts()

    def population(self) -> Population:
        return Population()
