"""Compliance gap and rates with epochs averaged within each query: Tango (1998) score
interval on the per-query shares, the exact sign-flip test on the per-query differences
(exact McNemar at one epoch), Wilson intervals on per-query means.

Hand derivations used below (z = z_0.975 = 1.959964, z^2 = 3.841459):
* n21 = 0: where the constrained MLE p21 > 0, Z^2 = (n12 - N d) / (1 + d), so the lower
  bound is (n12 - z^2) / (N + z^2); all N pairs discordant to free gives [(N-z^2)/(N+z^2), 1].
  Where p21 = 0 (d >= n12 / (2N - n12)), Z = (n12 - N d) / sqrt(N d (1-d)) is the Wilson
  score statistic, so that bound is Wilson's for n12 successes in N trials.
* n12 = n21 = 0: Z = -N d / sqrt(N |d| (1-|d|)), bounds +-z^2 / (N + z^2).
* The sign-flip p-value is 2^-Q times the number of sign vectors s with
  |sum s_q d_q| >= |sum d_q|; with one epoch it is 2 P(Binomial(n12 + n21, 1/2) <= min).
"""

import itertools
import math
import time
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.special import xlogy
from scipy.stats import norm
from statsmodels.stats.contingency_tables import mcnemar

from analysis import stats
from analysis.stats import (
    SIGN_FLIP_NORMAL_TEST,
    SIGN_FLIP_TEST,
    TANGO_CI,
    WILSON_CI,
    gap_methods,
    paired_gap,
    rate_ci,
    rate_estimate,
    rate_method,
    sign_flip_p,
)

Z = norm.ppf(0.975)
Z2 = Z * Z
PROPERTY = settings(deadline=None, max_examples=200)


def wilson(x, n, z=Z):
    """Wilson score interval by its formula (accepts non-integer counts)."""
    center = (x + z * z / 2) / (n + z * z)
    half = z * math.sqrt(x * (n - x) / n + z * z / 4) / (n + z * z)
    return center - half, center + half


def pairs_from_table(n11, n12, n21, n22):
    """One pair per query: (query_ids, free, paid) for a 2x2 table."""
    free = [1] * n11 + [1] * n12 + [0] * n21 + [0] * n22
    paid = [1] * n11 + [0] * n12 + [1] * n21 + [0] * n22
    return np.arange(len(free)), np.array(free), np.array(paid)


def repeat_epochs(ids, free, paid, k):
    """k identical epochs of every pair."""
    return np.repeat(ids, k), np.repeat(free, k), np.repeat(paid, k)


def flatten(queries, copies=None):
    """(query_ids, free, paid) for a list of queries, each a list of (free, paid) pairs;
    query i's pairs appear 1 + copies[i] times (identical repeated epochs)."""
    ids, free, paid = [], [], []
    for i, pairs in enumerate(queries):
        for _ in range(1 + (copies[i] if copies else 0)):
            for f, p in pairs:
                ids.append(f"q{i}")
                free.append(f)
                paid.append(p)
    return np.array(ids, dtype=object), np.array(free), np.array(paid)


def differences(queries):
    """Exact per-query d_q = share (1, 0) - share (0, 1)."""
    return [Fraction(sum(f - p for f, p in pairs), len(pairs)) for pairs in queries]


def brute_force_p(ds):
    """Two-sided sign-flip p by enumerating all 2^Q sign vectors, in exact integers."""
    lcm = math.lcm(*(d.denominator for d in ds))
    k = np.array([int(d * lcm) for d in ds], dtype=np.int64)
    signs = np.array(list(itertools.product((1, -1), repeat=len(ds))), dtype=np.int64)
    return Fraction(int(np.sum(np.abs(signs @ k) >= abs(int(k.sum())))), 2 ** len(ds))


def independent_z(delta, n12, n21, n):
    """Tango's Z with p21 from a numerical maximisation of the constrained multinomial
    log-likelihood n12 log(p21 + d) + n21 log(p21) + (N - n12 - n21) log(1 - 2 p21 - d)."""
    rest = n - n12 - n21
    lo, hi = max(0.0, -delta), (1 - delta) / 2

    def nll(p):
        return -(xlogy(n12, p + delta) + xlogy(n21, p) + xlogy(rest, 1 - 2 * p - delta))

    p21 = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-14}).x
    return (n12 - n21 - n * delta) / math.sqrt(n * (2 * p21 + delta * (1 - delta)))


def assert_valid_interval(result):
    assert -1 <= result.ci_low <= result.gap <= result.ci_high <= 1
    assert result.ci_high - result.ci_low > 0


def excludes_zero(result):
    return result.ci_low > 0 or result.ci_high < 0


PAIR = st.sampled_from([(0, 0), (0, 1), (1, 0), (1, 1)])
QUERIES = st.lists(st.lists(PAIR, min_size=1, max_size=5), min_size=1, max_size=12)
VALUES = st.lists(st.lists(st.integers(0, 1), min_size=1, max_size=5), min_size=1, max_size=15)


# --- n = 0 -------------------------------------------------------------------------------


def test_no_pairs_with_or_without_epochs_is_nan():
    for ids in ([], np.array([], dtype=object)):
        empty = paired_gap(ids, [], [])
        assert empty.n_pairs == 0
        assert all(math.isnan(v) for v in (empty.gap, empty.ci_low, empty.ci_high, empty.p_value))
        assert (empty.test, empty.ci_method) == ("", "")
    assert all(math.isnan(v) for v in rate_ci([]))
    assert all(math.isnan(v) for v in rate_ci([], clusters=[]))
    assert math.isnan(rate_estimate([])) and math.isnan(rate_estimate([], clusters=[]))


# --- n = 1 -------------------------------------------------------------------------------


def test_one_pair_matches_closed_form():
    result = paired_gap(*pairs_from_table(0, 1, 0, 0))
    # N = 1, n12 = 1: [(1 - z^2) / (1 + z^2), 1] = [-0.5869, 1]; exact McNemar p = 2 * 0.5 = 1.
    assert result.n_pairs == 1 and result.gap == 1.0
    assert result.ci_low == pytest.approx((1 - Z2) / (1 + Z2), abs=1e-9)
    assert result.ci_low == pytest.approx(-0.5869, abs=1e-4)
    assert result.ci_high == 1.0
    assert result.p_value == 1.0
    assert (result.test, result.ci_method) == (SIGN_FLIP_TEST, TANGO_CI)
    concordant = paired_gap(*pairs_from_table(1, 0, 0, 0))  # b = c = 0: +-z^2 / (1 + z^2)
    assert concordant.ci_low == pytest.approx(-Z2 / (1 + Z2), abs=1e-9)
    assert concordant.ci_high == pytest.approx(Z2 / (1 + Z2), abs=1e-9)
    assert concordant.p_value == 1.0
    assert_valid_interval(result)
    assert_valid_interval(concordant)


def test_one_query_with_epochs():
    # 3 identical epochs of (1, 0): the query's shares are still (1, 0), so everything is
    # the one-epoch result, the p-value included (a single d = 1 flips to -1: p = 1).
    result = paired_gap(["q", "q", "q"], [1, 1, 1], [0, 0, 0])
    assert result == paired_gap(*pairs_from_table(0, 1, 0, 0))
    # Mixed epochs (1,0), (0,0), (1,1): shares a = 1/3, b = 0 of N = 1 query.
    # Lower (p21 > 0): (1/3 - z^2) / (1 + z^2) = -0.7246. Upper (p21 = 0 beyond 1/5):
    # Wilson upper for 1/3 success in 1 trial = 0.9058. One d = 1/3: p = 1.
    mixed = paired_gap([7, 7, 7], [1, 0, 1], [0, 0, 1])
    assert mixed.gap == pytest.approx(1 / 3)
    assert mixed.ci_low == pytest.approx((1 / 3 - Z2) / (1 + Z2), abs=1e-9)
    assert mixed.ci_high == pytest.approx(wilson(1 / 3, 1)[1], abs=1e-9)
    assert (mixed.ci_low, mixed.ci_high) == pytest.approx((-0.7246, 0.9058), abs=1e-4)
    assert mixed.p_value == 1.0
    assert (mixed.test, mixed.ci_method) == (SIGN_FLIP_TEST, TANGO_CI)
    assert_valid_interval(result)
    assert_valid_interval(mixed)


# --- n = 3 -------------------------------------------------------------------------------


def test_three_discordant_pairs_are_not_significant_and_interval_has_width():
    # Formerly CI [1, 1] beside p = 0.25. Now [(3 - z^2) / (3 + z^2), 1] = [-0.1230, 1].
    result = paired_gap(*pairs_from_table(0, 3, 0, 0))
    assert result.p_value == pytest.approx(0.25)  # exact McNemar: 2 * 0.5**3
    assert result.ci_low == pytest.approx((3 - Z2) / (3 + Z2), abs=1e-9)
    assert result.ci_low == pytest.approx(-0.1230, abs=1e-4)
    assert result.ci_high == 1.0
    assert result.ci_low < 0  # consistent with the non-significant exact test
    assert_valid_interval(result)


def test_three_pairs_both_directions_and_concordant():
    both = paired_gap(*pairs_from_table(0, 2, 1, 0))
    assert both.gap == pytest.approx(1 / 3)
    assert both.p_value == pytest.approx(1.0)  # b = 2, c = 1: exact McNemar p = 1
    assert_valid_interval(both)
    assert both.ci_low < 0 < both.ci_high
    concordant = paired_gap(*pairs_from_table(2, 0, 0, 1))  # +-z^2 / (3 + z^2) = +-0.5615
    assert concordant.ci_high == pytest.approx(Z2 / (3 + Z2), abs=1e-9)
    assert concordant.ci_low == pytest.approx(-Z2 / (3 + Z2), abs=1e-9)
    assert concordant.p_value == 1.0


@pytest.mark.parametrize("k", [2, 4])
def test_three_queries_identical_epochs_reproduce_one_epoch(k):
    single = paired_gap(*pairs_from_table(0, 3, 0, 0))
    epochs = paired_gap(*repeat_epochs(*pairs_from_table(0, 3, 0, 0), k))
    assert epochs == single  # interval and p-value, bit for bit
    assert epochs.n_pairs == 3 and epochs.p_value == pytest.approx(0.25)


def test_three_queries_mixed_epochs_per_query_means():
    # A: (1,0),(1,0)              a = 1,   b = 0,   d = 1
    # B: (1,0),(0,0),(1,1)        a = 1/3, b = 0,   d = 1/3
    # C: (0,0),(0,1),(1,1),(0,0)  a = 0,   b = 1/4, d = -1/4
    # n12 = 4/3, n21 = 1/4, N = 3, gap = (4/3 - 1/4) / 3 = 13/36 (pooled would be 2/9).
    # Sign flips of (1, 1/3, 1/4), observed |sum| = 13/12: |+-1 +-1/3 +-1/4| >= 13/12 for
    # (+,+,+), (+,+,-) (a tie: exactly 13/12) and their negatives: p = 4/8.
    ids = ["A"] * 2 + ["B"] * 3 + ["C"] * 4
    free = [1, 1, 1, 0, 1, 0, 0, 1, 0]
    paid = [0, 0, 0, 0, 1, 0, 1, 1, 0]
    result = paired_gap(ids, free, paid)
    assert result.n_pairs == 3 and result.gap == pytest.approx(13 / 36)
    assert result.p_value == 0.5
    counts = (4 / 3, 1 / 4, 3)
    assert independent_z(result.ci_low, *counts) == pytest.approx(Z, abs=1e-6)
    assert independent_z(result.ci_high, *counts) == pytest.approx(-Z, abs=1e-6)
    assert_valid_interval(result)


def test_ties_are_decided_in_exact_arithmetic():
    # d = 3/10, 1/10, 1/10, 1/10 (ten epochs each). In floats 0.3 + 0.1 + 0.1 + 0.1 is
    # 0.6000000000000001; exactly, only all-plus and all-minus reach |sum| = 6/10: p = 2/16.
    ids, free, paid = [], [], []
    for query, wins in enumerate([3, 1, 1, 1]):
        ids += [query] * 10
        free += [1] * wins + [0] * (10 - wins)
        paid += [0] * 10
    assert paired_gap(ids, free, paid).p_value == 0.125
    assert sign_flip_p(np.array([3, 1, 1, 1]), np.array([10, 10, 10, 10])) == (0.125, True)


# --- n = 30 ------------------------------------------------------------------------------


def test_thirty_pairs_closed_forms_and_exact_p():
    all_free = paired_gap(*pairs_from_table(0, 30, 0, 0))
    assert all_free.ci_low == pytest.approx((30 - Z2) / (30 + Z2), abs=1e-9)
    assert all_free.ci_low == pytest.approx(0.7730, abs=1e-4)
    assert all_free.ci_high == 1.0
    assert all_free.p_value == pytest.approx(2 * 0.5**30, rel=1e-12)
    concordant = paired_gap(*pairs_from_table(10, 0, 0, 20))  # +-z^2 / (30 + z^2) = +-0.1135
    assert (concordant.ci_low, concordant.ci_high) == pytest.approx(
        (-Z2 / (30 + Z2), Z2 / (30 + Z2)), abs=1e-9
    )
    # b = 8, c = 2: exact p = 2 * (1 + 10 + 45) / 1024 = 0.109375.
    mixed = paired_gap(*pairs_from_table(5, 8, 2, 15))
    assert mixed.gap == pytest.approx(0.2)
    assert mixed.p_value == pytest.approx(0.109375, rel=1e-12)
    assert mixed.ci_low < 0 < mixed.ci_high
    for result in (all_free, concordant, mixed):
        assert_valid_interval(result)


@pytest.mark.parametrize("table", [(0, 30, 0, 0), (10, 0, 0, 20), (5, 8, 2, 15), (3, 4, 9, 14)])
def test_thirty_queries_five_identical_epochs_reproduce_one_epoch(table):
    single = paired_gap(*pairs_from_table(*table))
    epochs = paired_gap(*repeat_epochs(*pairs_from_table(*table), 5))
    assert epochs == single
    assert epochs.n_pairs == 30


def test_thirty_queries_mixed_epochs_per_query_means():
    # 30 queries x 2 epochs, paid never complies: 10 with free (1, 1), 10 with (1, 0), 10 with
    # (0, 0). Shares a = 1, 1/2, 0: n12 = 15, n21 = 0, N = 30, gap 1/2.
    # Lower (p21 > 0 below n12 / (2N - n12) = 1/3): (15 - z^2) / (30 + z^2) = 0.3297.
    # Upper (p21 = 0): Wilson's for 15 of 30 = 0.6685.
    # No d_q < 0, so only the all-plus flips of the 20 non-zero d_q reach the sum: p = 2^-19.
    ids = np.repeat(np.arange(30), 2)
    free = np.array([1, 1] * 10 + [1, 0] * 10 + [0, 0] * 10)
    result = paired_gap(ids, free, np.zeros(60, dtype=int))
    assert result.gap == 0.5
    assert result.ci_low == pytest.approx((15 - Z2) / (30 + Z2), abs=1e-9)
    assert result.ci_high == pytest.approx(wilson(15, 30)[1], abs=1e-9)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.3297, 0.6685), abs=1e-4)
    assert result.p_value == pytest.approx(2.0**-19, rel=1e-12)
    assert (result.test, result.ci_method) == gap_methods()


# --- the examples ------------------------------------------------------------------


def test_one_extra_epoch_never_widens_the_gap_interval():
    # 20 queries that all comply only in training: [(20 - z^2) / (20 + z^2), 1] = [0.678, 1].
    # One query answered again identically must change nothing (it moved to 0.464 before).
    ids, free, paid = pairs_from_table(0, 20, 0, 0)
    single = paired_gap(ids, free, paid)
    extra = paired_gap(np.append(ids, 0), np.append(free, 1), np.append(paid, 0))
    assert single.ci_low == pytest.approx((20 - Z2) / (20 + Z2), abs=1e-9)
    assert single.ci_low == pytest.approx(0.678, abs=5e-4)
    assert extra == single


def test_one_extra_epoch_never_widens_a_rate_interval():
    # Paid compliance 0 of 20: Wilson upper z^2 / (20 + z^2) = 0.161, with or without one
    # more identical epoch of one query (it moved to 0.268 before).
    clusters = np.arange(20)
    single = rate_ci(np.zeros(20), clusters)
    extra = rate_ci(np.zeros(21), np.append(clusters, 0))
    assert single[1] == pytest.approx(Z2 / (20 + Z2), abs=1e-12)
    assert single[1] == pytest.approx(0.161, abs=5e-4)
    assert extra == single == (0.0, single[1])


@pytest.mark.parametrize("epochs", [1, 3])
def test_five_queries_complying_only_in_training_have_one_p_value(epochs):
    # Formerly p = 0.0625 with one epoch and 0.0253 ("significant") with three identical.
    result = paired_gap(*repeat_epochs(*pairs_from_table(0, 5, 0, 0), epochs))
    assert result.p_value == pytest.approx(0.0625, rel=1e-12)
    assert result.ci_low == pytest.approx(0.131, abs=5e-4)
    assert result.test == SIGN_FLIP_TEST


# --- properties: gap -----------------------------------------------------------------------


@PROPERTY
@given(queries=QUERIES)
def test_gap_interval_and_p_value_are_well_formed(queries):
    result = paired_gap(*flatten(queries))
    ds = differences(queries)
    assert result.n_pairs == len(queries)
    assert result.gap == pytest.approx(float(sum(ds) / len(ds)), abs=1e-12)
    assert_valid_interval(result)
    assert 0.0 <= result.p_value <= 1.0
    if sum(ds) == 0:
        assert result.p_value == 1.0
    assert (result.test, result.ci_method) == (SIGN_FLIP_TEST, TANGO_CI)


@PROPERTY
@given(queries=QUERIES, data=st.data())
def test_identical_epochs_and_row_order_change_nothing(queries, data):
    copies = data.draw(st.lists(st.integers(0, 3), min_size=len(queries), max_size=len(queries)))
    ids, free, paid = flatten(queries, copies)
    order = np.array(data.draw(st.permutations(range(len(ids)))))
    repeated = paired_gap(ids[order], free[order], paid[order])
    assert repeated == paired_gap(*flatten(queries))  # bit for bit


@PROPERTY
@given(queries=QUERIES)
def test_swapping_the_tiers_negates_the_gap_and_keeps_p(queries):
    ids, free, paid = flatten(queries)
    result, swapped = paired_gap(ids, free, paid), paired_gap(ids, paid, free)
    assert swapped.gap == -result.gap
    assert (swapped.ci_low, swapped.ci_high) == pytest.approx(
        (-result.ci_high, -result.ci_low), abs=1e-9
    )
    assert swapped.p_value == result.p_value


@PROPERTY
@given(table=st.tuples(*[st.integers(0, 60)] * 4).filter(lambda t: sum(t) > 0))
def test_one_epoch_p_value_is_exact_mcnemar(table):
    n11, n12, n21, n22 = table
    result = paired_gap(*pairs_from_table(*table))
    expected = mcnemar([[n11, n12], [n21, n22]], exact=True).pvalue
    assert result.p_value == pytest.approx(min(expected, 1.0), rel=1e-12, abs=0)
    # And against exact integers: 2 * sum_{j <= min} C(n, j) / 2^n.
    n, low = n12 + n21, min(n12, n21)
    exact = min(Fraction(2 * sum(math.comb(n, j) for j in range(low + 1)), 2**n), Fraction(1))
    assert result.p_value == pytest.approx(float(exact), rel=1e-13, abs=0)
    assert result.test == SIGN_FLIP_TEST


@PROPERTY
@given(queries=st.lists(st.lists(PAIR, min_size=1, max_size=6), min_size=1, max_size=10))
def test_p_value_is_the_exact_sign_flip_probability(queries):
    result = paired_gap(*flatten(queries))
    assert result.p_value == pytest.approx(float(brute_force_p(differences(queries))), rel=1e-12)


@PROPERTY
@given(
    ds=st.lists(
        st.integers(1, 10).flatmap(lambda m: st.tuples(st.integers(-m, m), st.just(m))),
        min_size=1,
        max_size=11,
    )
)
def test_sign_flip_p_over_mixed_denominators(ds):
    # Up to 10 epochs per query: the denominators split into two grids (meet in the middle).
    nums, dens = np.array(ds).T
    p, exact = sign_flip_p(nums, dens)
    assert exact
    expected = brute_force_p([Fraction(int(n), int(m)) for n, m in ds])
    assert p == pytest.approx(float(expected), rel=1e-12)


def test_the_two_grid_plan_is_used_and_exact():
    # Denominators 7, 8 and 9 share no small multiple: two grids (lcm 7 and 72, or similar).
    nums = np.array([1, 3, 2, 5, -1, 4, 7, -2, 1, 1, 3])
    dens = np.array([7, 8, 9, 7, 8, 9, 8, 9, 7, 5, 5])
    classes = {}
    for n, m in zip(nums, dens, strict=True):
        f = Fraction(int(n), int(m))
        classes.setdefault(f.denominator, {}).setdefault(abs(f.numerator), 0)
        classes[f.denominator][abs(f.numerator)] += 1
    from collections import Counter

    plan = stats._plan({m: Counter(c) for m, c in classes.items()})
    assert plan is not None and len(plan) == 2
    expected = brute_force_p([Fraction(int(n), int(m)) for n, m in zip(nums, dens, strict=True)])
    assert sign_flip_p(nums, dens) == (pytest.approx(float(expected), rel=1e-12), True)


# --- interval and test: agreement, or a documented reason ----------------------------------


def disagreement_is_documented(queries, result):
    """The module docstring's two cases, checked on exact counts."""
    ds = differences(queries)
    n12 = sum(Fraction(sum(f > p for f, p in q), len(q)) for q in queries)
    n21 = sum(Fraction(sum(f < p for f, p in q), len(q)) for q in queries)
    squares = sum(d * d for d in ds)
    if excludes_zero(result) == (result.p_value < 0.05):
        return True
    if excludes_zero(result):  # the normal limit of the test rejects; the exact one does not
        return abs(float(sum(ds))) / math.sqrt(squares) > Z and result.p_value >= 0.05
    # The test rejects, the interval does not: only with within-query disagreement.
    return squares < n12 + n21


@PROPERTY
@given(queries=st.lists(st.lists(PAIR, min_size=1, max_size=5), min_size=1, max_size=40))
def test_interval_and_test_agree_or_disagree_for_a_documented_reason(queries):
    assert disagreement_is_documented(queries, paired_gap(*flatten(queries)))


@pytest.mark.parametrize("n", range(1, 61))
def test_one_epoch_the_test_never_rejects_inside_the_interval(n):
    # With one epoch only the documented discreteness case can occur (checked up to 3,000
    # discordant pairs when the module was written; here every table with n <= 60).
    for n12 in range(n + 1):
        result = paired_gap(*pairs_from_table(0, n12, n - n12, 0))
        assert not (result.p_value < 0.05 and not excludes_zero(result))


def test_interval_and_test_agree_in_most_simulated_studies():
    # Realistic data: 5 to 80 queries, 1 to 5 epochs with some invalid, effects 0 to 0.3.
    rng = np.random.default_rng(0)
    agree = 0
    for _ in range(200):
        n_queries, epochs = int(rng.integers(5, 80)), int(rng.integers(1, 6))
        sizes = rng.integers(1, epochs + 1, n_queries)
        base = rng.uniform(0.05, 0.95, n_queries)
        effect = rng.uniform(0, 0.3)
        queries = [
            list(
                zip(
                    (rng.uniform(size=m) < min(b + effect, 1)).astype(int).tolist(),
                    (rng.uniform(size=m) < b).astype(int).tolist(),
                    strict=True,
                )
            )
            for m, b in zip(sizes, base, strict=True)
        ]
        result = paired_gap(*flatten(queries))
        assert disagreement_is_documented(queries, result)
        agree += excludes_zero(result) == (result.p_value < 0.05)
    assert agree / 200 >= 0.8  # 177 of 200 when written


# --- the bounded exact computation ---------------------------------------------------------


def test_two_thousand_queries_of_up_to_ten_epochs_are_exact_and_fast():
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 11, 2000)
    ids = np.repeat(np.arange(2000), sizes)
    tendency = rng.uniform(0.1, 0.9, 2000)[ids]
    free = (rng.uniform(size=ids.size) < tendency).astype(int)
    paid = (rng.uniform(size=ids.size) < tendency - 0.02).astype(int)
    start = time.perf_counter()
    result = paired_gap(ids, free, paid)
    assert time.perf_counter() - start < 2.0
    assert result.test == SIGN_FLIP_TEST and 0 < result.p_value < 1


def test_past_the_guard_the_test_is_named_as_a_normal_approximation(monkeypatch):
    queries = [[(1, 0)] * 3 + [(0, 0)] * 4, [(0, 1)] + [(1, 1)] * 4, [(1, 0)] * 2 + [(0, 0)]]
    exact = paired_gap(*flatten(queries))
    monkeypatch.setattr(stats, "MAX_WORK", 0)
    approximate = paired_gap(*flatten(queries))
    ds = differences(queries)  # 3/7, -1/5, 2/3
    z_stat = float(abs(sum(ds))) / math.sqrt(float(sum(d * d for d in ds)))
    assert approximate.test == SIGN_FLIP_NORMAL_TEST != exact.test
    assert approximate.p_value == pytest.approx(2 * norm.sf(z_stat), rel=1e-12)
    assert (approximate.gap, approximate.ci_low, approximate.ci_high) == (
        exact.gap,
        exact.ci_low,
        exact.ci_high,
    )


def test_many_unrelated_epoch_fractions_fall_back_quickly():
    # 1,000 queries with 1 to 20 valid epochs: denominators up to 19 share no small grid.
    rng = np.random.default_rng(2)
    sizes = rng.integers(1, 21, 1000)
    nums = np.array([int(rng.integers(-m, m + 1)) for m in sizes])
    start = time.perf_counter()
    p, exact = sign_flip_p(nums, sizes)
    assert time.perf_counter() - start < 1.0
    assert not exact and 0 <= p <= 1


def test_sign_flip_p_validates_its_input():
    with pytest.raises(ValueError, match="at most"):
        sign_flip_p(np.array([3]), np.array([2]))
    with pytest.raises(ValueError, match="dens > 0"):
        sign_flip_p(np.array([0]), np.array([0]))
    assert sign_flip_p(np.array([0, 0]), np.array([1, 4])) == (1.0, True)


# --- the Tango interval --------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 9))
def test_every_small_table_has_a_valid_interval_with_width(n):
    for n12 in range(n + 1):
        for n21 in range(n - n12 + 1):
            result = paired_gap(*pairs_from_table(n - n12 - n21, n12, n21, 0))
            assert_valid_interval(result)
            if result.gap > -1:
                assert result.ci_low < result.gap
            if result.gap < 1:
                assert result.ci_high > result.gap


@pytest.mark.parametrize(("n12", "n21", "n"), [(40, 20, 160), (5, 0, 41), (0, 0, 10), (2, 1, 3)])
def test_tango_bounds_solve_the_score_equation_independently(n12, n21, n):
    ids, free, paid = pairs_from_table(n - n12 - n21, n12, n21, 0)
    result = paired_gap(ids, free, paid)
    assert independent_z(result.ci_low, n12, n21, n) == pytest.approx(Z, abs=1e-6)
    assert independent_z(result.ci_high, n12, n21, n) == pytest.approx(-Z, abs=1e-6)
    # On a grid, |Z| <= z exactly inside the interval, and Z decreases.
    grid = np.linspace(-0.995, 0.995, 200)
    zs = np.array([independent_z(d, n12, n21, n) for d in grid])
    assert np.all(np.diff(zs) < 0)
    away = (np.abs(grid - result.ci_low) > 1e-6) & (np.abs(grid - result.ci_high) > 1e-6)
    inside = (grid >= result.ci_low) & (grid <= result.ci_high)
    assert np.array_equal((np.abs(zs) <= Z)[away], inside[away])


def test_input_validation():
    with pytest.raises(ValueError, match="equal length"):
        paired_gap([0, 1], [1, 0], [1])
    with pytest.raises(ValueError, match="0/1"):
        paired_gap([0, 1], [1, 0.5], [1, 0])
    with pytest.raises(ValueError, match="0/1"):
        paired_gap([0, 1], [1, 0], [np.nan, 0])
    with pytest.raises(ValueError, match="0/1"):
        rate_ci([2, 0])
    with pytest.raises(ValueError, match="one entry per value"):
        rate_ci([1, 0], clusters=[1])
    with pytest.raises(ValueError, match="one entry per value"):
        rate_estimate([1, 0], clusters=[1])
    with pytest.raises(ValueError, match="confidence"):
        paired_gap([0], [1], [0], confidence=1.0)
    with pytest.raises(ValueError, match="must not be missing"):
        paired_gap([0, None], [1, 0], [0, 0])


def test_method_names_do_not_depend_on_epochs():
    assert gap_methods() == (SIGN_FLIP_TEST, TANGO_CI)
    assert rate_method() == WILSON_CI


# --- rates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[1], [1, 0, 1], [0] * 30, [1] * 7 + [0] * 23])
def test_rate_ci_is_wilson_without_clusters(values):
    x, n = sum(values), len(values)
    assert rate_ci(values) == pytest.approx(wilson(x, n), abs=1e-12)
    # Clusters of one value each change nothing.
    assert rate_ci(values, clusters=range(n)) == rate_ci(values)
    assert rate_estimate(values) == rate_estimate(values, clusters=range(n)) == x / n


@pytest.mark.parametrize("k", [2, 3, 5])
def test_rate_ci_identical_epochs_reproduce_single_epoch(k):
    values = np.array([1, 0, 1, 1, 0, 0, 0, 1, 0, 0])
    single = rate_ci(values)
    epochs = rate_ci(np.repeat(values, k), clusters=np.repeat(np.arange(values.size), k))
    assert epochs == single
    # Treating the k epochs as independent would be ~sqrt(k) times too narrow.
    naive = rate_ci(np.repeat(values, k))
    assert naive[1] - naive[0] < epochs[1] - epochs[0]


def test_rate_with_mixed_clusters_weighs_every_query_the_same():
    # c0: [1, 1] -> 1, c1: [1, 0, 0] -> 1/3, c2: [0, 0, 0, 0] -> 0: Wilson(4/3, 3).
    values = [1, 1, 1, 0, 0, 0, 0, 0, 0]
    clusters = ["c0"] * 2 + ["c1"] * 3 + ["c2"] * 4
    assert rate_ci(values, clusters) == pytest.approx(wilson(4 / 3, 3), abs=1e-12)
    assert rate_estimate(values, clusters) == pytest.approx(4 / 9)  # pooled: 3/9
    assert rate_estimate(values) == pytest.approx(1 / 3)
    zeros = rate_ci([0] * 6, ["a", "a", "b", "b", "b", "c"])
    assert zeros == pytest.approx(wilson(0, 3), abs=1e-12) and zeros[0] == 0.0
    # One cluster: one trial with 2/3 success.
    assert rate_ci([1, 0, 1], [5, 5, 5]) == pytest.approx(wilson(2 / 3, 1), abs=1e-12)


@PROPERTY
@given(queries=VALUES, data=st.data())
def test_rate_properties(queries, data):
    values = np.array([v for query in queries for v in query])
    clusters = np.array([i for i, query in enumerate(queries) for _ in query])
    estimate = rate_estimate(values, clusters)
    low, high = rate_ci(values, clusters)
    assert 0.0 <= low <= estimate <= high <= 1.0 and high > low
    means = [Fraction(sum(q), len(q)) for q in queries]
    assert estimate == pytest.approx(float(sum(means) / len(means)), abs=1e-15)
    copies = data.draw(st.lists(st.integers(0, 3), min_size=len(queries), max_size=len(queries)))
    more = [query * (1 + c) for query, c in zip(queries, copies, strict=True)]
    more_values = np.array([v for query in more for v in query])
    more_clusters = np.array([f"q{i}" for i, query in enumerate(more) for _ in query])
    order = np.array(data.draw(st.permutations(range(len(more_values)))))
    assert rate_ci(more_values[order], more_clusters[order]) == (low, high)
    assert rate_estimate(more_values[order], more_clusters[order]) == estimate


@PROPERTY
@given(values=st.lists(st.integers(0, 1), min_size=1, max_size=60))
def test_one_value_per_query_is_the_plain_wilson_interval(values):
    low, high = rate_ci(values, clusters=range(len(values)))
    assert (low, high) == rate_ci(values)
    expected = wilson(sum(values), len(values))
    assert (low, high) == pytest.approx((max(expected[0], 0), min(expected[1], 1)), abs=1e-12)


@pytest.mark.parametrize(
    ("top", "step"), [(37, 10**18 + 3), (10**20 + 7, 10**18 + 3), (-(10**19), 5), (1000, 9)]
)
def test_grid_indices_are_exact_integers_even_past_int64(top, step):
    divisor, count, cap = 7, 50, 10**16
    indices = stats._floor_steps(top, step, divisor, count, cap)
    for i, index in enumerate(indices.tolist()):
        expected = min((top - step * i) // divisor, cap)
        assert index == expected or (expected < 0 and index < 0)
