"""Hermite coefficients c_k = E[phi(X) He_k(X)]/sqrt(k!): exact (SymPy) vs numeric, accuracy to k = 100, Parseval."""
import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.theory import activation, custom_activation, hermite_coefficients, polynomial_activation
from sigprop.theory.gaussian import expect
from sigprop.theory.hermite import he_normalised

EXACT_NAMES = ["identity", "relu", "abs", "step", "exp", "elu", "selu", "sin", "cos", "erf", "gelu"]


@pytest.mark.parametrize("name", EXACT_NAMES)
def test_exact_matches_numeric(name):
    exact = hermite_coefficients(name, 6, exact=True)
    num = hermite_coefficients(name, 6)
    assert len(exact) == 7
    np.testing.assert_allclose([float(e) for e in exact], num, atol=1e-13, rtol=0)


def test_exact_with_parameters_and_polynomials():
    import sympy as sp

    ex = hermite_coefficients(activation("leaky_relu", slope=0.2), 4, exact=True)
    np.testing.assert_allclose([float(e) for e in ex], hermite_coefficients(activation("leaky_relu", slope=0.2), 4),
                               atol=1e-14)
    ex = hermite_coefficients(activation("celu", alpha=0.5), 3, exact=True)
    np.testing.assert_allclose([float(e) for e in ex], hermite_coefficients(activation("celu", alpha=0.5), 3),
                               atol=1e-14)
    # x^3 = He_3 + 3 He_1  ->  c_1 = 3, c_3 = sqrt(3!)
    ex = hermite_coefficients(polynomial_activation([0, 0, 0, 1]), 5, exact=True)
    assert [sp.simplify(e - v) for e, v in zip(ex, [0, 3, 0, sp.sqrt(6), 0, 0])] == [0] * 6
    # relu closed forms: c_0 = 1/sqrt(2 pi), c_1 = 1/2, c_2 = 1/(2 sqrt(pi))
    ex = hermite_coefficients("relu", 2, exact=True)
    assert sp.simplify(ex[0] - 1 / sp.sqrt(2 * sp.pi)) == 0 and ex[1] == sp.Rational(1, 2)
    assert sp.simplify(ex[2] - 1 / (2 * sp.sqrt(sp.pi))) == 0


def _relu_mp(k):
    if k == 0:
        return 1 / mp.sqrt(2 * mp.pi)
    if k == 1:
        return mp.mpf(1) / 2
    m = k - 2
    if m % 2:
        return mp.mpf(0)
    return (-1) ** (m // 2) * mp.fac2(m - 1) / mp.sqrt(2 * mp.pi * mp.factorial(k))


def _erf_mp(k):
    if k % 2 == 0:
        return mp.mpf(0)
    j = (k - 1) // 2
    return (2 / mp.sqrt(3 * mp.pi) * mp.factorial(2 * j) * mp.mpf(-1) ** j / (mp.mpf(3) ** j * mp.factorial(j))
            / mp.sqrt(mp.factorial(k)))


REFERENCE = {
    "relu": _relu_mp,
    "exp": lambda k: mp.exp(mp.mpf(1) / 2) / mp.sqrt(mp.factorial(k)),
    "sin": lambda k: mp.exp(-mp.mpf(1) / 2) * mp.sin(k * mp.pi / 2) / mp.sqrt(mp.factorial(k)),
    "erf": _erf_mp,
    "step": lambda k: mp.mpf(1) / 2 if k == 0 else (0 if (k - 1) % 2 else
                                                    (-1) ** ((k - 1) // 2) * mp.fac2(k - 2)
                                                    / mp.sqrt(2 * mp.pi * mp.factorial(k))),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_numeric_accurate_to_1e12_up_to_k100(name):
    mp.mp.dps = 40
    num = hermite_coefficients(name, 100)
    ref = np.array([float(REFERENCE[name](k)) for k in range(101)])
    assert np.max(np.abs(num - ref)) < 1e-12


def test_numeric_high_order_of_smooth_activation_against_mpmath_quadrature():
    mp.mp.dps = 30
    k = 60
    f = lambda x: (mp.tanh(x) * mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi) * mp.hermite(k, x / mp.sqrt(2))  # noqa: E731
                   * mp.mpf(2) ** (-k / 2) / mp.sqrt(mp.factorial(k)))
    ref = mp.quad(f, mp.linspace(-20, 20, 41))
    assert abs(hermite_coefficients("tanh", k)[k] - float(ref)) < 1e-13


def test_recurrence_matches_definition():
    x = np.linspace(-3, 3, 7)
    H = he_normalised(6, x)
    he6 = (x**6 - 15 * x**4 + 45 * x**2 - 15) / math.sqrt(720)
    np.testing.assert_allclose(H[6], he6, atol=1e-12)


@settings(max_examples=examples(15), deadline=None)
@given(st.floats(min_value=-3.0, max_value=3.0, allow_nan=False))
def test_parseval_leaky_relu(slope):
    """sum_k c_k^2 = E phi^2 = (1 + slope^2)/2 up to the tail beyond K = 400, which for a kink decays only like
    K^(-3/2): c_k^2 ~ (1-slope)^2 sqrt(2/pi) k^(-5/2) / (2 pi) for even k, so the tail is
    ~ (1-slope)^2 sqrt(2/pi) / (6 pi) K^(-3/2) (= 5.3e-6 for relu): a truncated series cannot give 1e-10."""
    c = hermite_coefficients(activation("leaky_relu", slope=slope), 400)
    tail = (1 + slope * slope) / 2 - np.sum(c * c)
    expected = (1 - slope) ** 2 * math.sqrt(2 / math.pi) / (6 * math.pi) * 400**-1.5
    assert tail == pytest.approx(expected, rel=0.01, abs=1e-14)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu_tanh", "softplus"])
def test_parseval_smooth_tail_is_tiny(name):
    act = activation(name)
    c = hermite_coefficients(act, 300)
    m2 = expect(lambda x: float(act(x)) ** 2, 1.0)
    assert abs(m2 - np.sum(c * c)) < 1e-13


def test_bad_input():
    with pytest.raises(ValueError, match="kmax"):
        hermite_coefficients("relu", -1)
    with pytest.raises(TypeError):
        hermite_coefficients("relu", 2.5)
    with pytest.raises(ValueError, match="unknown"):
        hermite_coefficients("nope", 3)
    with pytest.raises(ValueError, match="no exact form"):
        hermite_coefficients("tanh", 3, exact=True)
    with pytest.raises(ValueError, match="SymPy expression"):
        hermite_coefficients(custom_activation(np.tanh), 2, exact=True)
