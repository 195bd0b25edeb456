"""Exact deep-linear correlators: recursion, closed form, four-point function, input checks."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.theory.correlators import deep_linear_four_point, deep_linear_moments


@settings(max_examples=examples(40), deadline=None)
@given(m=st.integers(1, 5), widths=st.lists(st.integers(1, 200), min_size=1, max_size=8),
       C_W=st.floats(0.2, 3.0), G0=st.floats(0.1, 5.0))
def test_matches_closed_form(m, widths, C_W, G0):
    got = deep_linear_moments(m, widths, C_W, G0)
    for l in range(len(widths)):
        G2 = C_W ** (l + 1) * G0
        prod = math.prod(math.prod(1 + 2 * j / w for j in range(m)) for w in widths[:l])
        assert got[l] == pytest.approx(prod * G2**m, rel=1e-12)


def test_two_point_has_no_width_dependence():
    np.testing.assert_allclose(deep_linear_moments(1, [3, 5, 7], C_W=1.5, G0=2.0), [3.0, 4.5, 6.75], rtol=1e-14)


def test_four_point_connected_and_leading_term():
    fp = deep_linear_four_point([10] * 6)
    np.testing.assert_allclose(fp.connected, [(1.2) ** l - 1 for l in range(6)], rtol=1e-12)
    np.testing.assert_allclose(fp.leading, [0.2 * l for l in range(6)], rtol=1e-12)
    big = deep_linear_four_point([10_000] * 6)
    # the leading 2(l-1)/n term is the connected part up to O(1/n^2)
    np.testing.assert_allclose(big.connected[1:], big.leading[1:], rtol=5 * 6 / 10_000)


def test_last_width_does_not_enter():
    a = deep_linear_moments(2, [4, 8, 16])
    b = deep_linear_moments(2, [4, 8, 1000])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(widths=8), TypeError, "sequence"),
    (dict(widths=[]), ValueError, "non-empty"),
    (dict(widths=[8, 0]), ValueError, "integers >= 1"),
    (dict(widths=[8, 2.5]), ValueError, "integers >= 1"),
    (dict(widths=[8], C_W=-1.0), ValueError, "C_W"),
    (dict(widths=[8], G0=float("nan")), ValueError, "G0"),
])
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        deep_linear_moments(2, **kwargs)
