"""The two-sample power behind the anti-lab and lying dry runs, checked against scipy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom, fisher_exact

from analysis.power import detectable_difference, two_sample_power


def brute_power(n1, n2, p1, p0):
    total = 0.0
    for x1 in range(n1 + 1):
        for x2 in range(n2 + 1):
            if fisher_exact([[x1, n1 - x1], [x2, n2 - x2]])[1] <= 0.05:
                total += binom.pmf(x1, n1, p1) * binom.pmf(x2, n2, p0)
    return total


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.floats(0, 1), st.floats(0, 1))
def test_power_is_the_exact_fisher_power(n1, n2, p1, p0):
    assert two_sample_power(n1, n2, p1, p0) == pytest.approx(brute_power(n1, n2, p1, p0), abs=1e-9)


def test_the_detectable_difference_is_the_smallest_with_the_power():
    found = detectable_difference(30, 30, 0.05)
    assert found is not None
    assert two_sample_power(30, 30, 0.05 + found, 0.05) >= 0.8
    assert two_sample_power(30, 30, 0.05 + found - 0.001, 0.05) < 0.8
    # More samples detect less; too few detect nothing.
    assert detectable_difference(300, 300, 0.05) < found
    assert detectable_difference(2, 2, 0.5) is None
    assert np.isclose(two_sample_power(10, 10, 0.3, 0.3), two_sample_power(10, 10, 0.3, 0.3))
