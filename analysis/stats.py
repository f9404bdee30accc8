"""Compliance rates and the paired compliance gap, with every query weighing the same.

Each query is asked in both tiers, possibly in several epochs. The epochs of one query are
not independent, so every statistic first averages the epochs within each query and then
treats the Q queries as the independent units.

Methods
-------
* Rates (`rate_estimate`, `rate_ci`). For query q with m_q values, y_q is their mean. The
  estimate is the mean of the y_q and the interval is the Wilson score interval (Wilson 1927,
  "Probable inference, the law of succession, and statistical inference", JASA 22:209-212) for
  the fractional count sum(y_q) out of Q trials. With one value per query both are the plain
  proportion and the plain Wilson interval. With unbalanced epochs the estimate weighs queries
  equally, so it can differ from the pooled share of all values.
* The gap (`paired_gap`). For query q with m_q (query, epoch) pairs valid in both tiers,
  d_q is the share of its pairs with (free, paid) = (1, 0) minus the share with (0, 1). The
  estimate is mean(d_q) = (n12 - n21) / Q, with n12 = sum(max(d_q, 0)) and
  n21 = sum(max(-d_q, 0)), the positive and negative parts of the per-query differences.
* Interval: Tango's score interval for a difference of paired proportions (Tango 1998,
  "Equivalence test and confidence interval for the difference in proportions for the
  paired-sample design", Statistics in Medicine 17:891-908) on the fractional counts n12, n21
  of N = Q pairs. With one epoch these are the discordant counts of the 2x2 table. A query
  whose epochs disagree in both directions counts by its net difference, as in the test.
* Test: the exact two-sided sign-flip (permutation) test on the d_q (Fisher 1935, The Design
  of Experiments, section 21). If the tiers are exchangeable within each query, the signs of
  the d_q are independent fair coins, and p = P(|sum s_q d_q| >= |sum d_q|) over s_q = +-1. With
  one pair per query only discordant queries have d_q != 0, all +-1, so the sum is a shifted
  Binomial(n12 + n21, 1/2) and p is the exact McNemar test (McNemar 1947).

Invariants (property-tested in tests/test_stats.py)
---------------------------------------------------
* Repeating the existing pairs (or values) of any queries in more identical epochs changes no
  estimate, interval or p-value, bit for bit: all of them depend only on the per-query
  shares, sums are exact (`math.fsum`), and the test works on exact fractions.
* One pair per query gives Tango's interval on the 2x2 table and the exact McNemar p-value.
* Gap intervals lie in [-1, 1] and rate intervals in [0, 1], and both contain the estimate;
  0 <= p <= 1, and p = 1 when sum(d_q) = 0. Swapping the tiers negates the gap and its
  interval and keeps p.

Where the interval and the test may disagree
--------------------------------------------
They are different methods, and the report says so wherever they disagree at 95% / 0.05.
Tango's statistic at 0 is McNemar's score statistic on the fractional counts, so the interval
excludes 0 exactly when |n12 - n21| > z sqrt(n12 + n21), with n12 + n21 = sum(|d_q|). The
test's null variance is sum(d_q^2) <= sum(|d_q|), with equality exactly when every |d_q| is 0
or 1 (a table like one epoch).

* Interval excludes 0, p >= 0.05: then |sum d_q| / sqrt(sum d_q^2) > z too, so the normal
  limit of the test would reject; the exact test is the more conservative (discreteness).
  Five queries that comply only in training: interval [0.131, 1], p = 0.0625.
* p < 0.05, interval contains 0: only when some 0 < |d_q| < 1, i.e. a query's epochs do not
  all agree. The interval then treats a query's net share as one paired observation, whose
  variance bounds that of a mean of m_q epochs from above (it is conservative), while the test
  uses the observed spread of the d_q. For tables like one epoch this case does not occur
  (checked for every table with up to 3,000 discordant queries).

Exact computation of the test
-----------------------------
With h the smaller of the sums of the positive and of the negative d_q,
p = 2 P(sum of a random subset of the |d_q| <= h), each |d_q| in the subset with probability
1/2. The |d_q| are fractions j/m (m at most the number of epochs). Queries are grouped by the
denominator m into at most two sides (chosen to make the work least); on each side the |d_q|
times the least common multiple of its denominators are integers, equal values form one group
whose subset sum is a scaled Binomial(count, 1/2), and the groups are convolved on that
integer grid. Probabilities are float64, but every step adds and multiplies non-negative
numbers, and the binomial weights are correctly rounded from exact integers (scipy's pmf for
a group of more than 4,096 queries), so p has a relative error of about (number of queries)
x 1e-16 (1e-12 with such a large group), down to the float64 underflow near 1e-300. The two
sides meet in one sum over the first side's grid, with the comparison "<= h" made in
integers, never in floats. 2,000 queries of 1 to 10 epochs take a fraction of a second.

Only when that would need a grid of more than `MAX_GRID` points on a side or more than
`MAX_WORK` operations (about half a second), p is the normal approximation
2 Phi(-|sum d_q| / sqrt(sum d_q^2)) of the same test, reported under the different name
`SIGN_FLIP_NORMAL_TEST`, so that no table calls it exact. That takes many queries with many
distinct epoch fractions whose denominators share no small common multiple: with valid-epoch
counts spread evenly, 5,000 queries of 1 to 10 epochs or 2,000 of 1 to 12 are exact, while
10,000 of 1 to 10, 2,000 of 1 to 15 or 1,000 of 1 to 20 are not. Runs in which most queries
keep all their epochs stay far inside the bounds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.stats import binom, norm
from statsmodels.stats.proportion import proportion_confint

# Method names, for the tables and figures that say which test or interval they report.
SIGN_FLIP_TEST = "exact sign-flip test on per-query differences (exact McNemar at one epoch)"
SIGN_FLIP_NORMAL_TEST = (
    "sign-flip test on per-query differences, normal approximation (too large to be exact)"
)
TANGO_CI = "Tango score on per-query means"
WILSON_CI = "Wilson score on per-query means"

# Bounds on the exact sign-flip computation (grid points of one side; elementary operations).
MAX_GRID = 1 << 22
MAX_WORK = 1 << 28


@dataclass(frozen=True)
class PairedGap:
    """Free minus paid compliance, every query weighing the same (see the module docstring).

    `n_pairs` counts distinct queries with at least one pair; `gap` is the mean over queries
    of their mean difference; `test` names the test behind `p_value` and `ci_method` the
    interval.
    """

    n_pairs: int
    gap: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    ci_method: str


def gap_methods() -> tuple[str, str]:
    """(test, ci_method) that `paired_gap` reports: the same for every number of epochs."""
    return SIGN_FLIP_TEST, TANGO_CI


def rate_method() -> str:
    """Name of the interval `rate_ci` reports: the same with or without several epochs."""
    return WILSON_CI


def paired_gap(
    query_ids: Sequence | np.ndarray,
    free: Sequence | np.ndarray,
    paid: Sequence | np.ndarray,
    confidence: float = 0.95,
) -> PairedGap:
    """Compliance gap over queries, with Tango's score interval and the sign-flip test.

    One element per (query, epoch) pair in which both tiers are valid: `free[i]`, `paid[i]`
    are 0/1 compliance and `query_ids[i]` the query (epochs of one query share an id). Epochs
    are averaged within each query first, so identical repeated epochs change nothing.
    """
    ids = np.asarray(query_ids, dtype=object)
    free_arr, paid_arr = _binary(free, "free"), _binary(paid, "paid")
    if ids.ndim != 1:
        raise ValueError("query_ids must be a 1-D array")
    if not len(ids) == len(free_arr) == len(paid_arr):
        raise ValueError(
            "query_ids, free and paid must have equal length: one value per query pair "
            f"(got {len(ids)}, {len(free_arr)}, {len(paid_arr)})"
        )
    z = _z(confidence)
    if free_arr.size == 0:
        return PairedGap(0, math.nan, math.nan, math.nan, math.nan, "", "")
    codes = _cluster_codes(ids, "query_ids")
    sizes = np.bincount(codes)
    diff = free_arr - paid_arr
    wins = np.bincount(codes, weights=diff == 1, minlength=sizes.size).astype(np.int64)
    losses = np.bincount(codes, weights=diff == -1, minlength=sizes.size).astype(np.int64)
    n_queries = int(sizes.size)
    # The interval reads the same per-query differences as the test: their positive and
    # negative parts. Per-query quotients are correctly rounded and fsum is exact, so both
    # counts depend only on the multiset of differences, not on row order or repeated epochs.
    net = wins - losses
    n12 = math.fsum((np.maximum(net, 0) / sizes).tolist())
    n21 = math.fsum((np.maximum(-net, 0) / sizes).tolist())
    gap = (n12 - n21) / n_queries
    low, high = _tango_interval(n12, n21, float(n_queries), z)
    p_value, exact = sign_flip_p(net, sizes)
    test = SIGN_FLIP_TEST if exact else SIGN_FLIP_NORMAL_TEST
    return PairedGap(n_queries, gap, low, high, p_value, test, TANGO_CI)


def rate_estimate(
    values: Sequence | np.ndarray, clusters: Sequence | np.ndarray | None = None
) -> float:
    """Mean of 0/1 `values`, each cluster (query) weighing the same; nan when empty.

    Without `clusters` this is the plain mean. With unbalanced epochs it is the mean of the
    per-query means, the estimate that `rate_ci` is an interval for.
    """
    values_arr, cluster_arr = _rate_inputs(values, clusters)
    if values_arr.size == 0:
        return math.nan
    successes, trials = _rate_counts(values_arr, cluster_arr)
    return successes / trials


def rate_ci(
    values: Sequence | np.ndarray,
    clusters: Sequence | np.ndarray | None = None,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Wilson score interval of `rate_estimate` ((nan, nan) when empty).

    With `clusters` (the query of each value) it is Wilson's interval for sum(per-query
    means) successes out of Q trials; with one value per query, the plain Wilson interval.
    """
    values_arr, cluster_arr = _rate_inputs(values, clusters)
    _z(confidence)  # validates it
    if values_arr.size == 0:
        return math.nan, math.nan
    successes, trials = _rate_counts(values_arr, cluster_arr)
    low, high = proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")
    estimate = successes / trials
    # Wilson's interval contains the estimate in exact arithmetic; keep it so after rounding.
    low, high = min(float(low), estimate), max(float(high), estimate)
    return min(max(low, 0.0), 1.0), min(max(high, 0.0), 1.0)


def sign_flip_p(numerators: np.ndarray, denominators: np.ndarray) -> tuple[float, bool]:
    """Two-sided sign-flip p-value for d_q = numerators[q] / denominators[q], and whether
    it is exact (False only past the `MAX_GRID` / `MAX_WORK` guard, see the module docstring).

    numerators and denominators are integers (wins minus losses, and pairs, per query).
    """
    nums = np.asarray(numerators, dtype=np.int64)
    dens = np.asarray(denominators, dtype=np.int64)
    if nums.shape != dens.shape or nums.ndim != 1 or (dens <= 0).any():
        raise ValueError("numerators and denominators must be 1-D, equal length, dens > 0")
    if (np.abs(nums) > dens).any():
        raise ValueError("every |numerator| must be at most its denominator")
    common = np.gcd(nums, dens)
    reduced = Counter(zip((nums // common).tolist(), (dens // common).tolist(), strict=True))
    classes: dict[int, Counter[int]] = {}
    positive = negative = Fraction(0)
    for (num, den), count in reduced.items():
        if num == 0:
            continue
        if num > 0:
            positive += Fraction(num * count, den)
        else:
            negative += Fraction(-num * count, den)
        classes.setdefault(den, Counter())[abs(num)] += count
    if positive == negative:
        return 1.0, True
    threshold = min(positive, negative)
    plan = _plan(classes)
    if plan is None:
        variance = math.fsum(c * (j / m) ** 2 for m, cl in classes.items() for j, c in cl.items())
        z_stat = float(abs(positive - negative)) / math.sqrt(variance)
        return min(1.0, float(2 * norm.sf(z_stat))), False
    return min(1.0, 2 * _lower_tail(plan, threshold)), True


# --- exact sign-flip distribution --------------------------------------------------------


@dataclass(frozen=True)
class _Side:
    """Denominators whose |d_q| share one integer grid of step `unit`: |d_q| = k * unit."""

    dens: tuple[int, ...]
    unit: Fraction
    groups: tuple[tuple[int, int], ...]  # (k, number of queries with that k)
    size: int  # grid points: sum of k * count, plus one
    work: int  # operations to build its distribution


def _side(classes: dict[int, Counter[int]], dens: tuple[int, ...]) -> _Side:
    lcm = math.lcm(*dens)
    # Reduced fractions are distinct, so are their multiples k: one group per fraction.
    scaled = [(j * (lcm // m), c) for m in dens for j, c in classes[m].items()]
    step = math.gcd(*(k for k, _ in scaled))
    groups = _dp_order((k // step, c) for k, c in scaled)
    size, work = 1, 0
    for k, count in groups:  # the adds that _subset_sum_pmf makes
        work += (count + 1) * size
        size += k * count
    return _Side(dens, Fraction(step, lcm), groups, size, work)


def _dp_order(groups: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Groups (k, count) in the order that makes the convolution cheapest.

    Adding a group costs (count + 1) x the current length and adds k x count to it; by an
    exchange argument the groups that add the least length per unit of cost go first.
    """
    return tuple(sorted(groups, key=lambda g: (g[0] * g[1] / (g[1] + 1), g)))


def _plan(classes: dict[int, Counter[int]]) -> tuple[_Side, ...] | None:
    """One or two sides covering every denominator with the least work, or None when even
    the best exceeds `MAX_GRID` / `MAX_WORK`.

    Splits are ranked by a quick upper bound on their work (every split for up to 12
    denominators; beyond that, each denominator joins the side where it adds the least),
    and the best few are costed exactly.
    """
    dens = sorted(classes)
    totals = {m: sum(j * c for j, c in classes[m].items()) for m in dens}
    gcds = {m: math.gcd(*classes[m]) for m in dens}
    adds = {m: sum(classes[m].values()) + len(classes[m]) for m in dens}

    def rough(members: tuple[int, ...]) -> int:
        if not members:
            return 0
        lcm = math.lcm(*members)
        step = math.gcd(*(lcm // m * gcds[m] for m in members))
        size = sum(lcm // m * totals[m] for m in members) // step + 1
        return (sum(adds[m] for m in members) + 1) * size

    splits: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    if len(dens) <= 12:
        first, rest = dens[0], dens[1:]
        for mask in range(1 << len(rest)):
            left = (first, *(m for i, m in enumerate(rest) if mask >> i & 1))
            splits.append((left, tuple(m for i, m in enumerate(rest) if not mask >> i & 1)))
    else:
        split: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
        for m in sorted(dens, key=lambda m: (-totals[m] / m, m)):
            left, right = split
            split = min(
                (tuple(sorted((*left, m))), right),
                (left, tuple(sorted((*right, m)))),
                key=lambda s: rough(s[0]) + rough(s[1]),
            )
        splits.append(split)
    shortlist = sorted(splits, key=lambda s: (rough(s[0]) + rough(s[1]), s))[:8]
    plans = [tuple(_side(classes, members) for members in split if members) for split in shortlist]
    best = min(plans, key=lambda sides: sum(s.work + s.size for s in sides))
    if max(s.size for s in best) > MAX_GRID or sum(s.work + s.size for s in best) > MAX_WORK:
        return None
    return best


def _subset_sum_pmf(groups: tuple[tuple[int, int], ...]) -> np.ndarray:
    """P(V = v), v = 0, 1, ..., for V = sum over groups of k * Binomial(count, 1/2).

    `groups` come in `_dp_order`; each is count + 1 shifted, weighted adds.
    """
    pmf = np.ones(1)
    for k, count in groups:
        weights = _binomial_half(count)
        out = np.zeros(pmf.size + k * count)
        scratch = np.empty_like(pmf)
        for j in np.flatnonzero(weights).tolist():
            np.multiply(pmf, weights[j], out=scratch)
            out[j * k : j * k + pmf.size] += scratch
        pmf = out
    return pmf


def _binomial_half(count: int) -> np.ndarray:
    """P(Binomial(count, 1/2) = j), j = 0..count: each correctly rounded from exact
    integers (C(count, j) / 2^count) up to 4,096 trials, scipy's pmf beyond."""
    if count > 4096:
        return binom.pmf(np.arange(count + 1), count, 0.5)
    coefficients = [1]
    for j in range(count):
        coefficients.append(coefficients[-1] * (count - j) // (j + 1))
    total = 1 << count
    return np.array([c / total for c in coefficients])


def _lower_tail(sides: tuple[_Side, ...], threshold: Fraction) -> float:
    """P(a random subset of the |d_q| sums to at most `threshold`), exactly in integers."""
    pmfs = [_subset_sum_pmf(s.groups) for s in sides]
    if len(sides) == 1:
        last = math.floor(threshold / sides[0].unit)
        return float(np.cumsum(pmfs[0])[min(last, sides[0].size - 1)])
    (a, b), (pmf_a, pmf_b) = sides, pmfs
    # sum_i P(V_a = i) P(V_b <= floor((threshold - i * unit_a) / unit_b)), in integers.
    scale = math.lcm(threshold.denominator, a.unit.denominator, b.unit.denominator)
    top = int(threshold * scale)
    step_a, step_b = int(a.unit * scale), int(b.unit * scale)
    index = _floor_steps(top, step_a, step_b, a.size, b.size - 1)
    cdf_b = np.cumsum(pmf_b)
    return float(np.dot(pmf_a, np.where(index < 0, 0.0, cdf_b[np.maximum(index, 0)])))


def _floor_steps(top: int, step: int, divisor: int, count: int, cap: int) -> np.ndarray:
    """min(floor((top - step * i) / divisor), cap) for i = 0..count-1, as int64 (negative
    where below 0): exact, in int64 where that cannot overflow, otherwise in Python integers."""
    if max(abs(top), step * count) < 1 << 62:
        index = (top - step * np.arange(count, dtype=np.int64)) // divisor
        return np.minimum(index, cap)
    return np.array(
        [max(min((top - step * i) // divisor, cap), -1) for i in range(count)], dtype=np.int64
    )


# --- shared helpers ------------------------------------------------------------------------


def _rate_inputs(
    values: Sequence | np.ndarray, clusters: Sequence | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    values_arr = _binary(values, "values")
    if clusters is None:
        return values_arr, None
    cluster_arr = np.asarray(clusters, dtype=object)
    if cluster_arr.ndim != 1 or len(cluster_arr) != len(values_arr):
        raise ValueError(
            f"clusters must be 1-D with one entry per value "
            f"(got {cluster_arr.shape} for {len(values_arr)} values)"
        )
    return values_arr, cluster_arr


def _rate_counts(values: np.ndarray, clusters: np.ndarray | None) -> tuple[float, float]:
    """(sum of per-cluster means, number of clusters); plain (successes, n) without."""
    if clusters is None:
        return math.fsum(values.tolist()), float(values.size)
    codes = _cluster_codes(clusters, "clusters")
    sizes = np.bincount(codes)
    totals = np.bincount(codes, weights=values, minlength=sizes.size)
    return math.fsum((totals / sizes).tolist()), float(sizes.size)


def _binary(values: Sequence | np.ndarray, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must hold 0/1 values") from error
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array")
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{name} must hold only 0/1 values (no NaN or fractions)")
    return arr


def _cluster_codes(ids: np.ndarray, name: str) -> np.ndarray:
    codes, _ = pd.factorize(pd.Series(ids, dtype=object))
    if (codes < 0).any():
        raise ValueError(f"{name} must not be missing")
    return codes


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    return float(norm.ppf(1 - (1 - confidence) / 2))


# --- Tango's score interval ----------------------------------------------------------------


def _tango_parts(delta: float, n12: float, n21: float, n: float) -> tuple[float, float]:
    """Numerator and variance of Tango's score statistic at Delta = delta (Tango 1998).

    Constrained MLE: p21 = [B + sqrt(B^2 + 8 N n21 delta (1-delta))] / (4N) with
    B = n12 (1+delta) + n21 (1-delta) - 2 N delta; Z = (n12 - n21 - N delta) / sqrt(var),
    var = N (2 p21 + delta (1-delta)). Counts may be fractional (sums of per-query shares).
    """
    b = n12 * (1 + delta) + n21 * (1 - delta) - 2 * n * delta
    root = math.sqrt(max(b * b + 8 * n * n21 * delta * (1 - delta), 0.0))
    p21 = (b + root) / (4 * n)
    numerator = n12 - n21 - n * delta
    variance = max(n * (2 * p21 + delta * (1 - delta)), 0.0)
    return numerator, variance


def _tango_interval(n12: float, n21: float, n: float, z: float) -> tuple[float, float]:
    """{delta in [-1, 1]: |Z(delta)| <= z}, bounds by scipy's brentq.

    Z decreases in delta and is 0 at the estimate. To keep the root finder on finite values
    it solves the equivalent R(delta) = Z / sqrt(1 + Z^2) = num / sqrt(num^2 + var) = +-c,
    c = z / sqrt(1 + z^2): R is finite at delta = +-1 where var = 0 (R = +-1, Z = +-inf), and
    R = 0 where num = var = 0 (b = c = 0 at delta = 0, the limit of Z there). If the estimate
    is +-1 that bound is +-1; otherwise R crosses +-c strictly inside, so the interval has
    non-zero width and contains the estimate.
    """
    estimate = min(max((n12 - n21) / n, -1.0), 1.0)
    target = z / math.sqrt(1 + z * z)

    def ratio(delta: float) -> float:
        numerator, variance = _tango_parts(delta, n12, n21, n)
        scale = math.sqrt(numerator * numerator + variance)
        return 0.0 if scale == 0 else numerator / scale

    def bound(edge: float, sign: float) -> float:
        if edge == estimate or sign * ratio(edge) <= target:
            return edge
        root = optimize.brentq(
            lambda d: sign * ratio(d) - target, min(edge, estimate), max(edge, estimate)
        )
        return float(root)

    return bound(-1.0, 1.0), bound(1.0, -1.0)
