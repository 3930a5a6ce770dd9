"""A journey's lift with its uncertainty: the difference in conversion between the runs
that were treated and the holdout, a 95% confidence interval for it, and how many more
customers it would take to tell at the rates seen so far.

- **The interval** is Newcombe's hybrid score interval for a difference of two
  independent proportions (Newcombe 1998, method 10), built from each arm's Wilson score
  interval. Unlike the textbook Wald interval it stays inside [-1, 1] and keeps its
  coverage with few conversions or a small holdout, which is where journeys start.
- **Significant** means the interval leaves out 0.
- **Customers needed** is the usual normal-approximation sample size for a two-sided test
  at 5% with 80% power, for the arms' observed rates and their observed size ratio
  (Fleiss, *Statistical Methods for Rates and Proportions*, 3rd ed., §4.2, without
  continuity correction).
- **Revenue per customer** (every run counts, a run that did not convert with 0) is
  compared with Welch's unequal-variance t interval for a difference of means, with the
  Welch–Satterthwaite degrees of freedom. The t quantile is the Cornish–Fisher expansion
  in the normal quantile (Abramowitz & Stegun 26.7.5), within 0.13% of the exact one
  from 3 degrees of freedom up; below 3 there is no interval (too few runs to say).

>>> estimate = lift_estimate(treated_converted=56, treated=70, holdout_converted=48, holdout=80)
>>> round(estimate.difference, 4), round(estimate.low, 4), round(estimate.high, 4)
(0.2, 0.0524, 0.3339)
>>> estimate.significant
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

#: Two-sided 95%.
Z_95 = NormalDist().inv_cdf(0.975)
#: 80% power.
Z_POWER = NormalDist().inv_cdf(0.80)


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for a proportion.

    >>> [round(x, 4) for x in wilson_interval(56, 70)]
    [0.6918, 0.877]
    """
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    denominator = 1 + z * z / trials
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


def newcombe_interval(
    x1: int, n1: int, x2: int, n2: int, z: float = Z_95
) -> tuple[float, float, float]:
    """``x1/n1 - x2/n2`` and Newcombe's hybrid score interval for it."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return difference, max(-1.0, low), min(1.0, high)


def customers_needed(p1: float, p2: float, ratio: float) -> int | None:
    """Customers in both arms together for a two-sided 5% test with 80% power to tell
    ``p1`` (treated) from ``p2`` (holdout), with ``ratio`` holdout per treated customer;
    None when the rates are equal (no sample is enough)."""
    delta = abs(p1 - p2)
    if delta == 0 or ratio <= 0:
        return None
    pooled = (p1 + ratio * p2) / (1 + ratio)
    null_part = Z_95 * math.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio))
    alternative = Z_POWER * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / ratio)
    treated = ((null_part + alternative) / delta) ** 2
    return math.ceil(treated) + math.ceil(treated * ratio)


@dataclass(frozen=True)
class LiftEstimate:
    treated_rate: float
    holdout_rate: float
    #: Treated minus holdout conversion, and its 95% interval.
    difference: float
    low: float
    high: float
    #: Customers both arms would need at these rates; None when they are equal.
    needed: int | None
    #: How many more than the runs so far (0 once there are enough).
    more_needed: int | None

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def lift_estimate(
    *, treated_converted: int, treated: int, holdout_converted: int, holdout: int
) -> LiftEstimate | None:
    """The estimate for a journey's arms; None until both arms have runs."""
    if treated <= 0 or holdout <= 0:
        return None
    difference, low, high = newcombe_interval(
        treated_converted, treated, holdout_converted, holdout
    )
    p1, p2 = treated_converted / treated, holdout_converted / holdout
    needed = customers_needed(p1, p2, holdout / treated)
    more = None if needed is None else max(0, needed - treated - holdout)
    return LiftEstimate(p1, p2, difference, low, high, needed, more)


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile at ``p`` with ``df`` degrees of freedom (``df`` >= 3), by the
    Cornish–Fisher expansion (Abramowitz & Stegun 26.7.5).

    >>> round(t_quantile(0.975, 10), 4), round(t_quantile(0.975, 1e9), 4)
    (2.2281, 1.96)
    """
    if df < 3:
        raise ValueError(f"t_quantile needs at least 3 degrees of freedom, not {df}")
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@dataclass(frozen=True)
class MeanArm:
    """One arm's values as sums: how many, their sum and their sum of squares."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n

    @property
    def variance(self) -> float:
        """The sample variance (n - 1 in the denominator), never below 0."""
        return max(0.0, (self.squares - self.total * self.total / self.n) / (self.n - 1))


@dataclass(frozen=True)
class MeanDifference:
    treated_mean: float
    holdout_mean: float
    #: Treated minus holdout, its 95% interval, and the Welch degrees of freedom.
    difference: float
    low: float
    high: float
    df: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def welch_interval(treated: MeanArm, holdout: MeanArm) -> MeanDifference | None:
    """Welch's 95% interval for ``treated.mean - holdout.mean``; None with fewer than two
    values in an arm or under 3 degrees of freedom.

    >>> d = welch_interval(MeanArm(3, 6.0, 14.0), MeanArm(3, 15.0, 77.0))
    >>> d.difference, round(d.df, 1)
    (-3.0, 4.0)
    """
    if treated.n < 2 or holdout.n < 2:
        return None
    v1, v2 = treated.variance / treated.n, holdout.variance / holdout.n
    difference = treated.mean - holdout.mean
    spread = v1 + v2
    if spread == 0:
        return MeanDifference(
            treated.mean, holdout.mean, difference, difference, difference, math.inf
        )
    df = spread**2 / (v1**2 / (treated.n - 1) + v2**2 / (holdout.n - 1))
    if df < 3:
        return None
    half = t_quantile(0.975, df) * math.sqrt(spread)
    return MeanDifference(
        treated.mean, holdout.mean, difference, difference - half, difference + half, df
    )
