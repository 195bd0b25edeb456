"""KernelMap: closed forms vs 2-D integration, series/polar paths, identities, derivatives, bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.theory import ACTIVATION_NAMES, KernelMap, activation, custom_activation
from sigprop.theory.gaussian import expect, expect2, pair_expect

RHO = np.concatenate([[-1.0, -1 + 1e-9, -0.999], np.linspace(-0.95, 0.95, 21), [0.999, 1 - 1e-9, 1.0]])
MAPS = {name: KernelMap(name) for name in ACTIVATION_NAMES}
CLOSED = [n for n, km in MAPS.items() if km.method == "closed form"]


def test_methods_cover_expected_activations():
    assert set(CLOSED) == {"identity", "relu", "leaky_relu", "abs", "step", "erf", "gelu", "exp", "sin", "cos"}
    assert MAPS["tanh"].method == "hermite series" and MAPS["selu"].method == "polar chebyshev"


@pytest.mark.parametrize("name", CLOSED)
def test_closed_form_matches_2d_integration(name):
    km = MAPS[name]
    act = km.activation
    num = pair_expect(act.fn, act.fn, 1.0, 1.0, RHO, act.kinks, act.kinks, fine=True) / km.C2
    np.testing.assert_allclose(km(RHO), num, atol=1e-12, rtol=0)
    if not act.jumps:  # Price: kappa' = E[phi' phi'] / E phi^2
        d = pair_expect(act.deriv, act.deriv, 1.0, 1.0, RHO, act.kinks, act.kinks, fine=True) / km.C2
        np.testing.assert_allclose(km.derivative(RHO), d, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name,rhos", [("relu", (-0.6, 0.99)), ("elu", (0.99,)), ("tanh", (0.35,))])
def test_against_adaptive_iterated_quadrature(name, rhos):
    km = MAPS[name]
    f = km.activation.fn
    for r in rhos:  # expect2 itself loses accuracy closer to rho = 1
        ref = expect2(lambda a, b: float(f(np.array(a)) * f(np.array(b))), np.array([[1.0, r], [r, 1.0]]),
                      km.activation.kinks) / km.C2
        assert km(r) == pytest.approx(ref, abs=2e-11)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_identities_every_activation(name):
    km = MAPS[name]
    v = km(RHO)
    assert km(1.0) == pytest.approx(1.0, abs=1e-13)
    assert np.all(np.abs(v) <= 1 + 1e-13)
    act = km.activation
    m0 = expect(lambda x: float(act(x)), 1.0, act.kinks)
    m2 = expect(lambda x: float(act(x)) ** 2, 1.0, act.kinks)
    assert km.C == pytest.approx(math.sqrt(m2), rel=1e-12)
    assert km.kappa0 == pytest.approx(m0 * m0 / m2, abs=1e-13)
    assert km(0.0) == pytest.approx(km.kappa0, abs=1e-12)
    assert km.derivative(0.0) == pytest.approx(km.kappa_prime0, abs=1e-11)
    if act.jumps:
        assert km.kappa_prime1 == math.inf
    else:
        assert km.derivative(1.0) == pytest.approx(km.kappa_prime1, rel=1e-12)
        d2 = expect(lambda x: float(act.derivative(x)) ** 2, 1.0, act.kinks)
        assert km.kappa_prime1 == pytest.approx(d2 / m2, rel=1e-12)
    if act.parity == "odd":
        np.testing.assert_allclose(km(-RHO), -v, atol=1e-12)
    elif act.parity == "even":
        np.testing.assert_allclose(km(-RHO), v, atol=1e-12)


@settings(max_examples=examples(30), deadline=None)
@given(st.sampled_from(ACTIVATION_NAMES), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_monotone_on_unit_interval(name, a, b):
    lo, hi = min(a, b), max(a, b)
    km = MAPS[name]
    assert km(lo) <= km(hi) + 1e-13


@settings(max_examples=examples(10), deadline=None)
@given(st.sampled_from(["leaky_relu", "elu", "celu"]), st.floats(0.05, 3.0), st.floats(-1.0, 1.0))
def test_parametric_families_kappa_one_and_parity(family, p, rho):
    params = {"leaky_relu": {"slope": -p}, "elu": {"alpha": p}, "celu": {"alpha": p}}[family]
    km = KernelMap(family, **params)
    assert km(1.0) == pytest.approx(1.0, abs=1e-13)
    assert abs(km(rho)) <= 1 + 1e-13
    if family == "leaky_relu":  # phi(-x) = -slope phi(x) ... kappa(-rho) from the closed form's symmetry
        b, a = 1.0, -p
        A, S = (a - b) ** 2 / (2 * math.pi), (a * a + b * b) / 2
        assert km(-rho) - km(rho) == pytest.approx(-2 * rho * (S - A * math.pi / 2) / km.C2, abs=1e-13)


def test_parity_relations_for_custom_activations():
    odd = KernelMap(custom_activation(lambda x: np.sin(2 * x) + x**3 / 5, parity="odd",
                                      derivative=lambda x: 2 * np.cos(2 * x) + 3 * x**2 / 5))
    even = KernelMap(custom_activation(lambda x: np.abs(x) ** 1.5, kinks=(0.0,), parity="even",
                                       derivative=lambda x: 1.5 * np.sign(x) * np.abs(x) ** 0.5))
    np.testing.assert_allclose(odd(-RHO), -odd(RHO), atol=1e-12)
    np.testing.assert_allclose(even(-RHO), even(RHO), atol=1e-12)
    assert even.kappa_prime0 == pytest.approx(0.0, abs=1e-15)


def test_custom_kink_away_from_zero():
    """relu(x - 0.5): kinks off 0 are split radially; kappa to ~1e-11 (documented), kappa' ~1e-9 near the ends."""
    act = custom_activation(lambda x: np.maximum(x - 0.5, 0.0), kinks=(0.5,), derivative=lambda x: (x > 0.5) * 1.0)
    km = KernelMap(act)
    for r in (-0.5, 0.3):
        ref = expect2(lambda a, b: max(a - 0.5, 0) * max(b - 0.5, 0), np.array([[1, r], [r, 1]]), (0.5,)) / km.C2
        assert km(r) == pytest.approx(ref, abs=1e-11)
    ends = np.array([-1.0, -0.9999999, 0.9999, 0.9999999, 1.0])
    num = pair_expect(act.fn, act.fn, 1.0, 1.0, ends, (0.5,), (0.5,), fine=True) / km.C2
    np.testing.assert_allclose(km(ends), num, atol=1e-11)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "silu"])
def test_series_path_agrees_with_polar_path(name):
    act = activation(name)
    fake = custom_activation(act.fn, derivative=act.deriv, kinks=(0.0,), name=name + "_split")
    polar = KernelMap(fake)
    assert polar.method == "polar chebyshev" and MAPS[name].method == "hermite series"
    np.testing.assert_allclose(MAPS[name](RHO), polar(RHO), atol=1e-12, rtol=0)
    np.testing.assert_allclose(MAPS[name].derivative(RHO), polar.derivative(RHO), atol=1e-11, rtol=0)
    inner = RHO[np.abs(RHO) < 0.99]
    np.testing.assert_allclose(MAPS[name].derivative(inner, 2), polar.derivative(inner, 2), atol=1e-7, rtol=0)


@pytest.mark.parametrize("name", ["relu", "gelu", "erf", "tanh", "elu", "exp", "sin", "leaky_relu"])
def test_derivatives_match_finite_differences(name):
    km = MAPS[name]
    r = np.linspace(-0.9, 0.9, 13)
    h = 1e-5
    np.testing.assert_allclose(km.derivative(r), (km(r + h) - km(r - h)) / (2 * h), atol=1e-8)
    np.testing.assert_allclose(km.derivative(r, 2), (km.derivative(r + h) - km.derivative(r - h)) / (2 * h), atol=1e-6)
    np.testing.assert_allclose(km.derivative(r, 0), km(r), atol=0)


def test_relu_closed_form_and_end_behaviour():
    km = MAPS["relu"]
    r = np.linspace(-1, 1, 9)
    ref = (np.sqrt(1 - r * r) + (math.pi - np.arccos(r)) * r) / math.pi
    np.testing.assert_allclose(km(r), ref, atol=1e-15)
    np.testing.assert_allclose(km.derivative(r), 1 - np.arccos(r) / math.pi, atol=1e-15)
    assert km.derivative(1.0, 2) == math.inf
    assert MAPS["step"].derivative(1.0) == math.inf


def test_vectorised_shapes_and_scalars():
    km = MAPS["gelu"]
    assert isinstance(km(0.3), float)
    assert km(np.zeros((3, 4))).shape == (3, 4)
    assert MAPS["selu"](np.full((2, 5), 0.5)).shape == (2, 5)


def test_bad_input():
    km = MAPS["relu"]
    for bad in (1.0000001, -1.5, float("nan"), [0.2, 2.0]):
        with pytest.raises(ValueError, match="rho"):
            km(bad)
    with pytest.raises(ValueError, match="order"):
        km.derivative(0.1, order=3)
    with pytest.raises(ValueError, match="= 0"):
        KernelMap(custom_activation(lambda x: np.zeros_like(x)))
    with pytest.raises(ValueError, match="infinite"):
        KernelMap(custom_activation(lambda x: np.exp(x * x)))
    with pytest.raises(ValueError, match="unknown"):
        KernelMap("relu6")
    with pytest.raises(TypeError):
        KernelMap("tanh", slope=0.1)
    assert KernelMap("leaky_relu", slope=0.3).activation.param_dict == {"slope": 0.3}
