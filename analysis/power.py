"""Power of the paired gap test: what gap a run of n queries can detect, and how many
queries a gap needs.

The test is the project's exact sign-flip test (`analysis.stats`), which with one epoch per
query is the exact McNemar test: of the m discordant queries, b complied only in the
trained tier, and the test rejects at level alpha when 2 P(Binomial(m, 1/2) <= min(b, m - b))
< alpha. Over n queries the number of discordant ones is Binomial(n, p10 + p01), and given
m, b is Binomial(m, p10 / (p10 + p01)), where p10 (p01) is the chance that a query complies
only in the trained (only in the unmonitored) tier. Power is summed exactly over m and b:
no simulation and no normal approximation.

A planned run knows its compliance rates only roughly, and the discordance not at all, so
the rates can be given either way:

* as the unmonitored compliance u and a gap g, with the two tiers of a query taken to be
  independent: p10 = (u + g)(1 - u), p01 = u(1 - u - g); or
* as the discordance rate d = p10 + p01 with the gap g = p10 - p01.

Independence is the default. At the usual power targets it is conservative when the tiers
are not negatively correlated (a model that answers a query alike in both tiers more often
than chance leaves fewer discordant queries); negatively correlated tiers need a larger gap.
A gap below zero (more compliance unmonitored) is searched in that direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.stats import binom, norm

ALPHA = 0.05
POWER = 0.8
GRID = 0.001
"""Gaps are searched in steps of 0.1 percentage point (and reported rounded up to it)."""
MAX_QUERIES = 100_000
WINDOW = 50
"""How far below the bisected answer `queries_needed` looks for an earlier count that
already reaches the power."""


@dataclass(frozen=True)
class Rates:
    """What is assumed of a run: the unmonitored compliance (tiers independent), or the
    discordance rate, which then bounds the gap."""

    unmonitored: float | None = None
    discordance: float | None = None

    def __post_init__(self) -> None:
        if (self.unmonitored is None) == (self.discordance is None):
            raise ValueError("give the unmonitored compliance or the discordance rate, not both")
        value = self.unmonitored if self.unmonitored is not None else self.discordance
        if not 0 <= float(value) <= 1:
            raise ValueError(f"a rate must lie in [0, 1], not {value}")

    def cells(self, gap: float) -> tuple[float, float] | None:
        """(p10, p01) for `gap`, or None where no such gap fits these rates."""
        if self.unmonitored is not None:
            u = self.unmonitored
            if not -1e-12 <= u + gap <= 1 + 1e-12:
                return None
            trained = min(max(u + gap, 0.0), 1.0)
            return trained * (1 - u), u * (1 - trained)
        d = float(self.discordance)  # type: ignore[arg-type]
        if abs(gap) > d + 1e-12:
            return None
        return (d + gap) / 2, (d - gap) / 2

    def largest_gap(self, negative: bool = False) -> float:
        """The largest gap these rates allow, in size: above zero, or below it."""
        if self.unmonitored is not None:
            return self.unmonitored if negative else 1 - self.unmonitored
        return float(self.discordance)  # type: ignore[arg-type]

    def describe(self) -> str:
        if self.unmonitored is not None:
            return (
                f"unmonitored compliance {self.unmonitored:.3g}, tiers independent within a query"
            )
        return f"discordance rate {self.discordance:.3g}"


def critical_counts(m: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """For each number m of discordant queries, the largest k for which the exact test
    rejects when min(b, m - b) <= k (-1 where no split of m can reject)."""
    m = np.asarray(m, dtype=np.int64)
    k = binom.ppf(alpha / 2, m, 0.5).astype(np.int64)  # smallest k with cdf >= alpha/2
    # Step down until 2 cdf(k) < alpha (the test's "significant"), at most a couple of steps.
    for _ in range(3):
        too_big = (k >= 0) & (2 * binom.cdf(k, m, 0.5) >= alpha)
        k = np.where(too_big, k - 1, k)
    return k


@lru_cache(maxsize=256)
def _critical(n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    m = np.arange(n + 1)
    return m, critical_counts(m, alpha)


def power(n: int, p10: float, p01: float, alpha: float = ALPHA) -> float:
    """Exact power of the exact McNemar test with n queries and these cell probabilities."""
    if n < 1:
        return 0.0
    d = p10 + p01
    if d < 1e-12:  # power below 1e-60; scipy's binomial overflows on subnormal rates
        return 0.0
    m, k = _critical(n, alpha)
    share = p10 / d
    share = 0.0 if share < 1e-15 else 1.0 if share > 1 - 1e-15 else share  # ditto
    low = np.where(k >= 0, binom.cdf(k, m, share), 0.0)
    high = np.where(k >= 0, binom.sf(m - k - 1, m, share), 0.0)
    return float(np.sum(binom.pmf(m, n, min(d, 1.0)) * (low + high)))


@lru_cache(maxsize=4096)
def detectable_gap(
    n: int, rates: Rates, target: float = POWER, alpha: float = ALPHA, negative: bool = False
) -> float | None:
    """The smallest gap in size (on a 0.001 grid), above zero or with `negative` below it,
    that the test detects with at least `target` power in n queries; None when no gap these
    rates allow reaches it.

    Power grows with the gap, so the grid is bisected; a discrete test can break that by a
    hair, so the steps just below the answer are checked as well.
    """

    sign = -1 if negative else 1

    def reaches(step: int) -> bool:
        cells = rates.cells(sign * step * GRID)
        return cells is not None and power(n, *cells, alpha) >= target

    top = math.floor(rates.largest_gap(negative) / GRID + 1e-9)
    if top < 1 or not reaches(top):
        return None
    low, high = 0, top  # reaches(high); the answer is in (low, high]
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if reaches(middle) else (middle, high)
    while high > 1 and reaches(high - 1):
        high -= 1
    return round(high * GRID, 3)


def queries_needed(
    gap: float, rates: Rates, target: float = POWER, alpha: float = ALPHA
) -> int | None:
    """The number of queries whose exact test detects `gap` with at least `target` power;
    None when the rates do not allow the gap or it needs more than `MAX_QUERIES`.

    Exact power is not monotone in n (the test is discrete), so the answer is bracketed by
    doubling and bisection, then the `WINDOW` counts below it are searched for a smaller
    one that already reaches the power; a few counts just above the answer can fall back
    below it.
    """
    cells = rates.cells(gap)
    if cells is None or gap == 0:
        return None

    def reaches(n: int) -> bool:
        return power(n, *cells, alpha) >= target

    high = max(1, int(connor_queries(abs(gap), cells[0] + cells[1], target, alpha)))
    while not reaches(high):
        if high >= MAX_QUERIES:
            return None
        high = min(2 * high, MAX_QUERIES)
    low = high // 2
    while low > 1 and reaches(low):
        low //= 2
    while high - low > 1:  # reaches(high), and the answer lies above low
        middle = (low + high) // 2
        low, high = (low, middle) if reaches(middle) else (middle, high)
    earlier = [n for n in range(max(1, high - WINDOW), high) if reaches(n)]
    return earlier[0] if earlier else high


def connor_queries(
    gap: float, discordance: float, target: float = POWER, alpha: float = ALPHA
) -> float:
    """The normal-approximation sample size for McNemar's test (Connor 1987, Biometrics
    43:207-211): [z_{a/2} sqrt(d) + z_b sqrt(d - g^2)]^2 / g^2. A starting point for the
    exact search, and the textbook value the tests compare with."""
    za, zb = norm.ppf(1 - alpha / 2), norm.ppf(target)
    return (
        za * math.sqrt(discordance) + zb * math.sqrt(max(discordance - gap**2, 0))
    ) ** 2 / gap**2


@lru_cache(maxsize=256)
def worst_case_gap(n: int, target: float = POWER, alpha: float = ALPHA) -> float | None:
    """The gap detected with `target` power whatever the unmonitored compliance (tiers
    independent): what a plan can promise before any data. None where no gap is: at some
    compliance every gap the rates allow stays below the power (few queries).

    By symmetry (u and 1 - u - g give the same cells) only u up to a half matters. The
    largest need from a 0.05 grid of u is raised until every u on a 0.0025 grid, and the
    u = (1 - g) / 2 of most discordance, reach the power.
    """
    coarse = [
        detectable_gap(n, Rates(unmonitored=round(u, 4)), target, alpha)
        for u in np.arange(0, 0.501, 0.05)
    ]
    if any(g is None for g in coarse):
        return None
    gap = max(g for g in coarse if g is not None)
    fine = [round(u, 4) for u in np.arange(0, 0.501, 0.0025)]
    while gap <= 1:
        checked = [*fine, round((1 - gap) / 2, 4)]
        short = [
            u
            for u in checked
            if u + gap <= 1 and power(n, *Rates(unmonitored=u).cells(gap), alpha) < target
        ]
        if not short:
            return round(gap, 3)
        gap = round(gap + GRID, 3)
    return None


# --- Two unpaired samples: a condition against its baseline (anti-lab, lying) -------------


@lru_cache(maxsize=64)
def _fisher_rejects(n1: int, n2: int, alpha: float) -> np.ndarray:
    """Which tables (x1 of n1, x2 of n2) the two-sided Fisher exact test rejects at alpha.

    Conditional on the total t = x1 + x2, x1 is hypergeometric; the p-value sums the
    probabilities no larger than the observed one (with scipy's relative tolerance)."""
    from scipy.stats import hypergeom

    rejects = np.zeros((n1 + 1, n2 + 1), dtype=bool)
    for total in range(n1 + n2 + 1):
        low, high = max(0, total - n2), min(n1, total)
        x1 = np.arange(low, high + 1)
        pmf = hypergeom.pmf(x1, n1 + n2, total, n1)
        order = np.sort(pmf)
        cumulative = np.cumsum(order)
        # p(x) = sum of pmf <= pmf(x) (1 + 1e-7): the cumulative sum up to that value.
        p = cumulative[np.searchsorted(order, pmf * (1 + 1e-7), side="right") - 1]
        rejects[x1, total - x1] = p <= alpha
    return rejects


def two_sample_power(n1: int, n2: int, p1: float, p0: float, alpha: float = ALPHA) -> float:
    """Exact power of the two-sided Fisher test of n1 samples at rate p1 against n2 at p0.

    Boschloo's test, which the report uses, is uniformly at least as powerful, so this is a
    conservative figure for it."""
    rejects = _fisher_rejects(n1, n2, alpha)
    return float(
        binom.pmf(np.arange(n1 + 1), n1, p1) @ rejects @ binom.pmf(np.arange(n2 + 1), n2, p0)
    )


def detectable_difference(
    n1: int, n2: int, baseline: float, target: float = POWER, alpha: float = ALPHA
) -> float | None:
    """The smallest rise above a baseline rate that n1 samples against n2 detect with the
    target power (on the GRID, rounded up); None when not even a rate of 1 would."""
    if two_sample_power(n1, n2, 1.0, baseline, alpha) < target:
        return None
    low, high = 0, round((1 - baseline) / GRID)
    while high - low > 1:  # power rises with the rate above the baseline
        middle = (low + high) // 2
        if two_sample_power(n1, n2, baseline + middle * GRID, baseline, alpha) >= target:
            high = middle
        else:
            low = middle
    return round(high * GRID, 3)
