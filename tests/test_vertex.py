"""Leading-order vertex recursion (one and two inputs): special cases, Gaussian identities, symbolic derivations."""

import numpy as np
import pytest
import sympy as sp

from sigprop.theory.activations import activation
from sigprop.theory.correlators import (
    derive_scale_invariant_vertex,
    derive_score_weights,
    double_critical_point,
    multi_input_vertex_recursion,
    scale_invariant_vertex,
    vertex_recursion,
)
from sigprop.theory.correlators.multi_input import _layer_terms
from sigprop.theory.correlators.vertex import gaussian_moments
from sigprop.theory.gaussian import expect, expect2


def test_symbolic_scale_invariant_solution():
    A2, A4, K = sp.symbols("A_2 A_4 K", positive=True)
    l = sp.Symbol("l", integer=True, positive=True)
    assert sp.simplify(derive_scale_invariant_vertex() - (l - 1) * (3 * A4 / A2**2 - 1) * K**2) == 0


@pytest.mark.parametrize("name, params, expected_slope", [
    ("relu", {}, 5.0), ("identity", {}, 2.0), ("leaky_relu", {"slope": 0.3}, None), ("abs", {}, 2.0)])
def test_general_recursion_reproduces_scale_invariant_closed_form(name, params, expected_slope):
    phi = activation(name, **params)
    ap, am = phi.slopes
    A2 = (ap**2 + am**2) / 2
    K0 = 0.8
    r = vertex_recursion(phi, [50] * 7, C_W=1 / A2, K0=K0)
    K = K0 / A2
    np.testing.assert_allclose(r.K, K, rtol=1e-12)
    np.testing.assert_allclose(r.chi_par, 1.0, rtol=1e-10)
    np.testing.assert_allclose(r.V, scale_invariant_vertex(phi, 7, K), rtol=1e-10, atol=1e-10)
    if expected_slope is not None:
        np.testing.assert_allclose(r.V / K**2, expected_slope * np.arange(7), rtol=1e-10)
    np.testing.assert_allclose(r.dK, 0.0, atol=1e-12)  # <phi^2>_K is linear in K: no shift of E z^2


def test_gaussian_moments_against_finite_differences_tanh():
    g = gaussian_moments("tanh", 0.7)
    h = 1e-4
    m = lambda K: gaussian_moments("tanh", K).m2
    assert g.d1 == pytest.approx((m(0.7 + h) - m(0.7 - h)) / (2 * h), rel=1e-7)
    assert g.d2 == pytest.approx((m(0.7 + h) - 2 * m(0.7) + m(0.7 - h)) / h**2, rel=1e-4)
    assert g.m4 == pytest.approx(expect(lambda x: np.tanh(x) ** 4, 0.7), rel=1e-12)


def test_tanh_large_depth_slope_is_two_thirds():
    r = vertex_recursion("tanh", [100] * 400, C_W=1.0)
    slope = (r.V[-1] / r.K[-1] ** 2 - r.V[-101] / r.K[-101] ** 2) / 100
    assert slope == pytest.approx(2 / 3, abs=0.03)


def test_gelu_double_critical_point():
    C_W, C_b, K = double_critical_point("gelu")
    assert (C_W, C_b, K) == pytest.approx((1.98305826, 0.17292239, 3.56155281), rel=1e-7)
    r = vertex_recursion("gelu", [64] * 4, C_W, C_b, K0=(K - C_b) / C_W)
    np.testing.assert_allclose(r.K, K, rtol=1e-10)
    np.testing.assert_allclose(r.chi_par, 1.0, rtol=1e-9)


def test_multi_input_single_input_limit():
    for name, cw in (("tanh", 1.0), ("relu", 2.0)):
        a = multi_input_vertex_recursion(name, [16] * 4, cw, 0.1, np.array([[0.9]]))
        b = vertex_recursion(name, [16] * 4, cw, 0.1, 0.9)
        np.testing.assert_allclose(a.V[:, 0, 0], b.V, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(a.K[:, 0, 0], b.K, rtol=1e-12)


def test_multi_input_deep_linear_is_wishart_sum():
    G0 = np.array([[1.0, 0.3], [0.3, 0.8]])
    r = multi_input_vertex_recursion("identity", [16] * 3, 1.0, 0.0, G0)
    pairs = r.pairs
    gauss = np.array([[G0[a, c] * G0[b, d] + G0[a, d] * G0[b, c] for (c, d) in pairs] for (a, b) in pairs])
    for l in range(3):
        np.testing.assert_allclose(r.V[l], l * gauss, rtol=1e-8, atol=1e-10)


def test_score_weights_symbolic_and_derivative_matrix():
    w = derive_score_weights(2)  # raises if SymPy's derivative differs from the inverse-kernel form
    assert set(w) == {(0, 0), (0, 1), (1, 1)}
    # D_(12),(ef) against a finite difference of the kernel map <phi_1 phi_2>_K (tanh, two inputs)
    phi = activation("tanh")
    K = np.array([[0.9, 0.35], [0.35, 0.6]])
    _, D, _ = _layer_terms(phi, K, 1.0)
    h = 1e-4

    def kmap(Kp):
        return expect2(lambda x, y: np.tanh(x) * np.tanh(y), Kp)

    for r, (e, f) in enumerate([(0, 0), (0, 1), (1, 1)]):
        dK = np.zeros((2, 2))
        dK[e, f] = dK[f, e] = h
        fd = (kmap(K + dK) - kmap(K - dK)) / (2 * h)
        assert D[1, r] == pytest.approx(fd, rel=1e-5, abs=1e-8)
    # Price's theorem: d<phi_1 phi_2>/dK_12 = <phi'_1 phi'_2>
    price = expect2(lambda x, y: (1 - np.tanh(x) ** 2) * (1 - np.tanh(y) ** 2), K)
    assert D[1, 1] == pytest.approx(price, rel=1e-7)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(activation=3), TypeError, "activation"),
    (dict(activation="nope"), ValueError, "unknown"),
    (dict(activation="step"), ValueError, "discontinuous"),
    (dict(C_W=0.0), ValueError, "C_W"),
    (dict(C_b=-0.1), ValueError, "C_b"),
    (dict(K0=-1.0), ValueError, "K0"),
    (dict(K0=0.0), ValueError, "needs C_b > 0"),
    (dict(widths=[0, 3]), ValueError, "widths"),
])
def test_bad_input(kwargs, exc, match):
    args = dict(activation="tanh", widths=[8, 8], C_W=1.0, C_b=0.0, K0=1.0)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        vertex_recursion(**args)


def test_zero_input_with_bias_is_allowed():
    r = vertex_recursion("tanh", [8, 8, 8], 1.0, C_b=0.3, K0=0.0)
    assert r.K[0] == pytest.approx(0.3) and r.kappa4[2] > 0


def test_multi_input_bad_gram():
    with pytest.raises(ValueError, match="G0"):
        multi_input_vertex_recursion("tanh", [8, 8], 1.0, 0.0, np.eye(3))
    with pytest.raises(ValueError, match="positive definite"):
        multi_input_vertex_recursion("tanh", [8, 8], 1.0, 0.0, np.array([[1.0, 2.0], [2.0, 1.0]]))


@pytest.mark.parametrize("name", ["tanh", "relu", "gelu", "abs", "exp", "sin"])
def test_fixed_quadratures_match_adaptive_integration(name):
    from sigprop.theory.correlators.multi_input import expect2_polar
    from sigprop.theory.correlators.vertex import gauss_expect1

    phi = activation(name)
    for K in (0.3, 1.7):
        for p in (2, 4):
            ref = expect(lambda x: float(phi.fn(np.float64(x))) ** p, K, phi.kinks)
            assert gauss_expect1(lambda u: phi.fn(u) ** p, K, phi.kinks) == pytest.approx(ref, rel=1e-11, abs=1e-14)
    K2 = np.array([[0.8, -0.5], [-0.5, 1.1]])
    ref = expect2(lambda x, y: float(phi.fn(np.float64(x)) ** 3 * phi.fn(np.float64(y))), K2, phi.kinks)
    got = expect2_polar(lambda x, y: phi.fn(x) ** 3 * phi.fn(y), K2)
    assert got == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_agrees_with_meanfield_module():
    from sigprop.theory.meanfield import chi_parallel, variance_map

    for name, C_W, C_b in (("gelu", 1.7, 0.2), ("tanh", 1.3, 0.05), ("relu", 2.0, 0.0)):
        r = vertex_recursion(name, [10] * 4, C_W, C_b, 0.9)
        np.testing.assert_allclose(r.chi_par, [float(chi_parallel(name, k, C_W)) for k in r.K], rtol=1e-9)
        np.testing.assert_allclose(r.K[1:], [float(variance_map(name, k, C_W, C_b)) for k in r.K[:-1]], rtol=1e-10)
