"""A journey's lift interval and sample size against published figures."""

from __future__ import annotations

import pytest

from rules.lift import customers_needed, lift_estimate, newcombe_interval

# Newcombe (1998), "Interval estimation for the difference between independent
# proportions: comparison of eleven methods", Statistics in Medicine 17: 873-890, Table II,
# method 10 (hybrid score); (c) and (d) as statsmodels 0.15's
# confint_proportions_2indep(method="newcomb") gives them (it gives (a), (b), (e), (f) too).
NEWCOMBE = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
]


@pytest.mark.parametrize(("counts", "interval"), NEWCOMBE)
def test_the_interval_is_newcombes_hybrid_score_interval(
    counts: tuple[int, int, int, int], interval: tuple[float, float]
) -> None:
    _, low, high = newcombe_interval(*counts)
    assert (round(low, 4), round(high, 4)) == interval


# statsmodels 0.15: samplesize_proportions_2indep_onetail(p1 - p2, p2, power=0.8,
# ratio=r, alpha=0.05, alternative="two-sided") gives the treated arm; both arms rounded up.
@pytest.mark.parametrize(
    ("p1", "p2", "ratio", "total"),
    [(0.85, 0.65, 1.0, 146), (0.30, 0.25, 0.1, 7693), (0.10, 0.08, 0.25, 10272)],
)
def test_customers_needed_is_the_normal_approximation_for_80_percent_power(
    p1: float, p2: float, ratio: float, total: int
) -> None:
    assert customers_needed(p1, p2, ratio) == total


def test_a_small_holdout_is_not_significant_and_says_how_many_more_it_needs() -> None:
    estimate = lift_estimate(treated_converted=330, treated=900, holdout_converted=30, holdout=100)
    assert estimate is not None
    assert not estimate.significant
    assert estimate.low < 0 < estimate.high
    assert estimate.more_needed is not None
    assert estimate.more_needed > 1000


def test_no_estimate_until_both_arms_have_runs_and_none_needed_for_equal_rates() -> None:
    assert lift_estimate(treated_converted=5, treated=10, holdout_converted=0, holdout=0) is None
    equal = lift_estimate(treated_converted=5, treated=10, holdout_converted=5, holdout=10)
    assert equal is not None
    assert equal.needed is None


def test_the_journey_report_carries_each_journeys_interval() -> None:
    from rules.actions import JourneyMilestone
    from rules.journey_report import JourneyReport

    report = JourneyReport()
    outputs = []
    for number in range(40):
        arm = "holdout" if number % 4 == 0 else "main"
        entered = JourneyMilestone.make(
            "entered", "j", f"r{number}", arm, f"c{number}", None, 0.0, "e"
        )
        outputs.append(entered)
        if number % 2 == 0:
            outputs.append(
                JourneyMilestone.make(
                    "converted", "j", f"r{number}", arm, f"c{number}", None, 1.0, "o"
                )
            )
    report.count_all(outputs)
    (row,) = report.rows()
    interval = row["lift_interval"]
    assert isinstance(interval, dict)
    # treated: 30 runs, 10 converted (numbers 2, 6, ...); holdout: 10 runs, all converted
    _, low, high = newcombe_interval(10, 30, 10, 10)
    assert (interval["low"], interval["high"]) == (round(low, 4), round(high, 4))
    assert interval["significant"] is True
