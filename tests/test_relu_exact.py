"""Exact finite-width ReLU moments: the binomial mixture of chi-square variables."""
import math

import numpy as np
import pytest
import sympy as sp
from scipy import stats

from sigprop.theory.correlators import relu_kurtosis_ratio, relu_moment_factor, relu_moments
from sigprop.theory.correlators.wick import n


def test_low_order_factors():
    assert sp.simplify(relu_moment_factor(1, 2) - 1) == 0
    assert sp.simplify(relu_moment_factor(2, 2) - (1 + 5 / n)) == 0
    CW = sp.Symbol("C_W", positive=True)
    assert sp.simplify(relu_moment_factor(1) - CW / 2) == 0


@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("width", [1, 2, 5, 17])
def test_factor_matches_direct_binomial_sum(m, width):
    # independent evaluation: sum_k Binom(k; n, 1/2) (2/n)^m k (k+2) ... (k+2m-2)
    k = np.arange(width + 1)
    direct = np.sum(stats.binom.pmf(k, width, 0.5) * np.prod([k + 2 * j for j in range(m)], axis=0)) * (2 / width) ** m
    assert float(relu_moment_factor(m, 2).subs(n, width)) == pytest.approx(direct, rel=1e-12)


def test_kurtosis_ratio_is_product_of_one_plus_five_over_n():
    widths = [3, 8, 20, 5, 64]
    expected = [math.prod(1 + 5 / w for w in widths[:l]) for l in range(len(widths))]
    np.testing.assert_allclose(relu_kurtosis_ratio(widths), expected, rtol=1e-13)
    np.testing.assert_allclose(relu_kurtosis_ratio(widths, C_W=1.3), expected, rtol=1e-13)


def test_second_moment_has_no_width_correction_at_criticality():
    np.testing.assert_allclose(relu_moments(1, [2, 3, 4, 5], C_W=2.0, G0=0.7), [1.4] * 4, rtol=1e-14)


def test_bad_input():
    with pytest.raises(ValueError, match="m must be"):
        relu_moments(0, [4])
    with pytest.raises(ValueError, match="C_W"):
        relu_moments(2, [4], C_W=0.0)
