"""The power of the gap test: against the project's own test, cases worked by hand, Connor's
textbook approximation and a seeded simulation; and the `power` command."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multinomial

from analysis.power import (
    Rates,
    connor_queries,
    critical_counts,
    detectable_gap,
    power,
    queries_needed,
    worst_case_gap,
)
from analysis.stats import sign_flip_p


def _rejects(trained_only: int, unmonitored_only: int, n: int) -> bool:
    """The project's own test on a one-epoch table (what the report computes)."""
    diffs = [1] * trained_only + [-1] * unmonitored_only
    diffs += [0] * (n - len(diffs))
    p, exact = sign_flip_p(np.array(diffs), np.ones(n, dtype=int))
    assert exact
    return p < 0.05


def test_the_rejection_region_is_the_projects_exact_test():
    for m in range(1, 61):
        k = int(critical_counts(np.array([m]))[0])
        for b in range(m + 1):
            assert (min(b, m - b) <= k) == _rejects(b, m - b, m), (m, b)


@pytest.mark.parametrize(("n", "p10", "p01"), [(8, 0.3, 0.1), (12, 0.25, 0.05), (10, 0.5, 0.0)])
def test_power_equals_the_sum_over_every_table(n, p10, p01):
    """Every (trained-only, unmonitored-only) table of n queries, weighed by its multinomial
    probability and judged by the project's own test."""
    expected = sum(
        multinomial.pmf([a, b, n - a - b], n, [p10, p01, 1 - p10 - p01])
        for a in range(n + 1)
        for b in range(n + 1 - a)
        if _rejects(a, b, n)
    )
    assert power(n, p10, p01) == pytest.approx(expected, abs=1e-12)


def test_a_case_worked_by_hand():
    # Six queries that always comply only in training: the test rejects only when all six
    # are discordant (2 / 2^6 = 0.031 < 0.05; five give 0.0625), so power = (1/2)^6.
    assert power(6, 0.5, 0.0) == pytest.approx(1 / 64, abs=1e-15)
    assert power(5, 0.5, 0.0) == 0.0
    assert power(6, 0.0, 0.0) == 0.0


def test_close_to_connors_textbook_sample_size():
    # Connor (1987): discordance 0.2, gap 0.1, 80% power at 0.05 -> 154.6 queries by the
    # normal approximation; the exact test, being discrete, needs a few more.
    assert connor_queries(0.1, 0.2) == pytest.approx(154.6, abs=0.05)
    assert queries_needed(0.1, Rates(discordance=0.2)) == 168
    for gap, d in [(0.05, 0.2), (0.1, 0.3), (0.2, 0.4), (0.15, 0.25)]:
        exact = queries_needed(gap, Rates(discordance=d))
        assert 0.95 * connor_queries(gap, d) <= exact <= 1.25 * connor_queries(gap, d)


def test_agrees_with_a_seeded_simulation():
    rng = np.random.default_rng(0)
    n, p10, p01, runs = 200, 0.18, 0.07, 4000
    tables = rng.multinomial(n, [p10, p01, 1 - p10 - p01], size=runs)
    k = critical_counts(np.arange(n + 1))
    m = tables[:, 0] + tables[:, 1]
    simulated = np.mean(np.minimum(tables[:, 0], tables[:, 1]) <= k[m])
    exact = power(n, p10, p01)
    assert abs(simulated - exact) < 4 * math.sqrt(exact * (1 - exact) / runs)


def test_the_detectable_gap_is_the_first_that_reaches_the_power():
    rates = Rates(unmonitored=0.1)
    gap = detectable_gap(200, rates)
    assert gap == 0.105
    assert power(200, *rates.cells(gap)) >= 0.8 > power(200, *rates.cells(gap - 0.001))
    assert detectable_gap(200, Rates(discordance=0.05)) == 0.045
    assert detectable_gap(20, Rates(discordance=0.05)) is None  # too few queries to tell
    # More queries never need a larger gap here, and the worst case bounds every rate.
    assert detectable_gap(800, rates) < detectable_gap(200, rates)
    worst = worst_case_gap(200)
    assert worst == 0.145
    assert all(detectable_gap(200, Rates(unmonitored=u)) <= worst for u in (0.0, 0.2, 0.45))


def test_review_cases_the_worst_rate_the_grid_edge_and_the_other_direction():
    # The least favourable unmonitored compliance can lie between the 0.05 grid points.
    assert worst_case_gap(34) == 0.365 and worst_case_gap(220) == 0.139
    for n in (34, 220):
        gap = worst_case_gap(n)
        for u in np.arange(0, 0.5, 0.001):
            assert power(n, *Rates(unmonitored=float(u)).cells(gap)) >= 0.8, (n, u)
    # A rate a hair above a grid point still allows the gaps up to 1 - u.
    assert detectable_gap(200, Rates(unmonitored=0.3000000000004)) == detectable_gap(
        200, Rates(unmonitored=0.3)
    )
    # Below zero: the mirror of the rates (u and 1 - u swap the cells), and none above
    # zero when the unmonitored tier always complies.
    assert detectable_gap(200, Rates(unmonitored=0.1), negative=True) == detectable_gap(
        200, Rates(unmonitored=0.9)
    )
    assert detectable_gap(500, Rates(unmonitored=1.0)) is None
    assert detectable_gap(500, Rates(unmonitored=1.0), negative=True) == 0.016


def test_queries_needed_is_the_first_count_that_reaches_the_power():
    for gap, rates in [(0.3, Rates(unmonitored=0.2)), (0.2, Rates(discordance=0.3))]:
        first = next(n for n in range(1, 1000) if power(n, *rates.cells(gap)) >= 0.8)
        assert queries_needed(gap, rates) == first
    assert queries_needed(0.02, Rates(unmonitored=0.2)) == 6608  # bracketed, not stepped


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    p10=st.floats(0, 1),
    p01=st.floats(0, 1),
)
def test_power_is_a_probability_and_symmetric_in_the_tiers(n, p10, p01):
    total = p10 + p01
    if total > 1:
        p10, p01 = p10 / total, p01 / total
    value = power(n, p10, p01)
    assert 0 <= value <= 1 + 1e-12
    assert value == pytest.approx(power(n, p01, p10), abs=1e-12)


def test_rates_refuse_both_or_neither_and_out_of_range():
    with pytest.raises(ValueError, match="not both"):
        Rates(unmonitored=0.1, discordance=0.2)
    with pytest.raises(ValueError, match="not both"):
        Rates()
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        Rates(discordance=1.5)
    assert Rates(discordance=0.2).cells(0.3) is None


def _power(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evals", "power", *args], capture_output=True, text=True
    )


def test_the_power_command():
    out = _power("--queries", "200", "--unmonitored", "0.1")
    assert out.returncode == 0
    assert out.stdout.startswith("200 queries: smallest detectable gap 0.105 (80% power")
    out = _power("--gap", "0.1", "--discordance", "0.2")
    assert out.returncode == 0 and out.stdout.startswith("gap 0.1: 168 queries")
    out = _power("--gap", "0.5", "--discordance", "0.2")
    assert out.returncode == 1 and "not reachable" in out.stdout
    out = _power("--queries", "12")
    assert out.stdout.startswith("12 queries: no gap is detected at every unmonitored")
    assert _power("--queries", "1", "--unmonitored", "0").stdout.startswith("1 query: no gap")
    for bad, message in [
        (["--queries", "0"], "must be a positive integer"),
        (["--gap", "1.5"], "must be a number from 0 to 1"),
        (["--gap", "0"], "strictly between 0 and 1"),
        (["--queries", "200000"], "at most 100,000"),
        (["--queries", "10", "--unmonitored", "0.1", "--discordance", "0.1"], "not allowed"),
    ]:
        out = _power(*bad)
        assert out.returncode == 2 and message in out.stderr.splitlines()[-1], bad


def test_the_report_says_what_each_non_significant_gap_could_have_detected():
    from analysis.logs import load_samples
    from analysis.summary import summarize
    from analysis.tables import significance_summary

    summary = summarize(
        load_samples([Path(__file__).resolve().parents[1] / "results/offline-demo"])
    )
    row = summary.set_index("name").loc["cut_rlhf_info"]
    assert row["gap_p_value"] >= 0.05 and row["n_pairs"] == 20
    expected = detectable_gap(20, Rates(unmonitored=round(row["unmonitored_compliance"], 3)))
    assert row["detectable_gap"] == expected == 0.367
    [note] = [n for n in significance_summary(summary) if n.startswith("Power of")]
    assert "cut_rlhf_info, 20 queries: 0.367" in note
    # A tier that always complies leaves no room for a gap in that direction: said so.
    always = summary.iloc[[0]].assign(
        gap_p_value=0.5, compliance_gap=0.0, unmonitored_compliance=1.0, detectable_gap=np.nan
    )
    [note] = [n for n in significance_summary(always) if n.startswith("Power of")]
    assert "no gap in this direction is possible" in note
    significant = summary.set_index("name").loc["tier_swap_control"]
    assert significant["gap_p_value"] < 0.05 and "tier_swap_control" not in note
