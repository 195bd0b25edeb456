"""Finite-width correlator theory against simulated networks (sigprop.kernels.simulate, gram method).

Exact results (deep linear G_4, G_6; ReLU prod(1 + 5/n)) are compared at fixed width within 4 SE; the
leading-order 1/n recursion (tanh, GELU, two-input ReLU) through the intercept of a WLS fit of
``n * (estimate)`` in 1/n, within 4 SE of the intercept.  Fixed seeds.
"""
import math

import numpy as np
import pytest

from sigprop.kernels import simulate
from sigprop.theory.correlators import (
    deep_linear_moments,
    double_critical_point,
    multi_input_vertex_recursion,
    relu_kurtosis_ratio,
    relu_moments,
    vertex_recursion,
)
from sigprop.validation.correlator_estimators import (
    gram_four_point,
    gram_moment,
    reliable_layers,
    single_input_estimates,
)
from sigprop.validation.stats import wls_extrapolate

ZMAX = 4.0


def _x(G0: float, n0: int = 4) -> np.ndarray:
    return np.full((1, n0), math.sqrt(G0))


def _run(act, n, depth, S, seed, C_W, C_b=0.0, G0=1.0, X=None):
    X = _x(G0) if X is None else X
    return simulate(X, depth=depth, width=n, activation=act, C_W=C_W, C_b=C_b, n_networks=S, seed=seed,
                    method="gram")


def _assert_z(est, se, theory, what):
    z = (np.asarray(est) - np.asarray(theory)) / np.asarray(se)
    assert np.all(np.abs(z) < ZMAX), f"{what}: estimate {est}, theory {theory}, z = {z}"


def _m2_moment(act, k, n, depth, C_W):
    """Exact E[m2^k] = c_2k(n) G_2k per layer (deep linear or ReLU, no bias)."""
    G = (deep_linear_moments if act == "identity" else relu_moments)(k, [n] * depth, C_W)
    return math.prod(1 + 2 * j / n for j in range(k)) * G


def _reliable(act, m, n, depth, C_W, S):
    """Layers (0-based) where mean(m2^m) has a trustworthy SE (estimators.reliable_layers)."""
    return reliable_layers(_m2_moment(act, 2 * m, n, depth, C_W), _m2_moment(act, 4 * m, n, depth, C_W), S)


# (width, depth, networks): deep enough to be non-Gaussian, shallow enough that the estimators' tails allow a
# trustworthy SE at every judged layer (asserted below, so the test cannot silently check nothing).
@pytest.mark.parametrize("n, depth, S", [(4, 2, 1_000_000), (8, 3, 100_000), (32, 4, 20_000)])
def test_deep_linear_exact_g4_g6(n, depth, S):
    C_W, G0 = 1.3, 0.8
    r = _run("identity", n, depth, S, seed=100 + n, C_W=C_W, G0=G0)
    m2, m4 = r.preact_m2[:, :, 0], r.preact_m4[:, :, 0]
    widths = [n] * depth
    ok4, ok6 = _reliable("identity", 2, n, depth, C_W, S), _reliable("identity", 3, n, depth, C_W, S)
    assert ok4[1:].any() and ok6[1:].any()  # at least one non-Gaussian layer judged
    G4 = deep_linear_moments(2, widths, C_W, G0)
    G6 = deep_linear_moments(3, widths, C_W, G0)
    for form in ("single", "cross", "gram"):
        e = single_input_estimates(m2, m4, n, form)
        _assert_z(e.G4.value[ok4], e.G4.se[ok4], G4[ok4], f"G4 ({form}), n={n}")
    e6 = gram_moment(m2, 3, n)
    _assert_z(e6.value[ok6], e6.se[ok6], G6[ok6], f"G6 (gram), n={n}")


@pytest.mark.parametrize("n, depth, S", [(4, 2, 200_000), (16, 4, 40_000)])
def test_relu_exact_kurtosis_ratio(n, depth, S):
    r = _run("relu", n, depth, S, seed=200 + n, C_W=2.0, G0=1.0)
    ok = _reliable("relu", 2, n, depth, 2.0, S)
    assert ok[1:].any()
    theory = relu_kurtosis_ratio([n] * depth) - 1.0
    for form in ("single", "cross"):
        e = single_input_estimates(r.preact_m2[:, :, 0], r.preact_m4[:, :, 0], n, form)
        _assert_z(e.ratio.value[ok], e.ratio.se[ok], theory[ok], f"ReLU ratio ({form}), n={n}")
        _assert_z(e.G2.value, e.G2.se, 2.0, f"ReLU E z^2 ({form}), n={n}")


def _extrapolate_ratio(act, C_W, C_b, G0, depth, widths, S, seed0, K=None):
    """WLS fits in 1/n of n (G4/G2^2 - 1) and, given the kernel K, of n (E z^2 - K) at the last layer."""
    ys, ses, g2, g2se = [], [], [], []
    for n in widths:
        r = _run(act, n, depth, S, seed=seed0 + n, C_W=C_W, C_b=C_b, G0=G0)
        e = single_input_estimates(r.preact_m2[:, :, 0], r.preact_m4[:, :, 0], n, "cross")
        ys.append(n * e.ratio.value[-1])
        ses.append(n * e.ratio.se[-1])
        if K is not None:
            g2.append(n * (e.G2.value[-1] - K))
            g2se.append(n * e.G2.se[-1])
    shift = wls_extrapolate(widths, g2, g2se, order=1) if K is not None else None
    return wls_extrapolate(widths, ys, ses, order=1), ys, ses, shift


def test_tanh_one_over_n_recursion():
    depth = 4
    th = vertex_recursion("tanh", [100] * depth, C_W=1.0, K0=1.0)
    theory = th.V[-1] / th.K[-1] ** 2  # lim n (E z^4 / (3 E[z^2]^2) - 1)
    fit, ys, ses, shift = _extrapolate_ratio("tanh", 1.0, 0.0, 1.0, depth, [8, 16, 32, 64], 40_000, 300, K=th.K[-1])
    assert abs(fit.intercept - theory) < ZMAX * fit.intercept_se, (fit.intercept, fit.intercept_se, theory, ys, ses)
    assert fit.intercept_se < 0.05 * theory  # the check is sensitive: a 20% error in V would fail
    # first-order shift of E z^2 away from K (our derivation): n (E z^2 - K) -> n dK
    n_dK = vertex_recursion("tanh", [1] * depth, C_W=1.0, K0=1.0).dK[-1]
    assert abs(shift.intercept - n_dK) < ZMAX * shift.intercept_se, (shift.intercept, shift.intercept_se, n_dK)
    assert abs(n_dK) > 3 * shift.intercept_se  # a nonzero shift is resolved: dK = 0 would fail


def test_gelu_critical_one_over_n_recursion():
    depth = 4
    C_W, C_b, K = double_critical_point("gelu")
    G0 = (K - C_b) / C_W
    th = vertex_recursion("gelu", [100] * depth, C_W, C_b, G0)
    theory = th.V[-1] / th.K[-1] ** 2
    fit, ys, ses, _ = _extrapolate_ratio("gelu", C_W, C_b, G0, depth, [32, 64, 128, 256], 12_000, 400)
    assert abs(fit.intercept - theory) < ZMAX * fit.intercept_se, (fit.intercept, fit.intercept_se, theory, ys, ses)
    assert fit.intercept_se < 0.05 * theory


def test_two_input_vertex_relu():
    depth, S, widths = 3, 30_000, [16, 32, 64]
    G0 = np.array([[1.0, 0.4], [0.4, 0.7]])
    X = np.linalg.cholesky(G0) * math.sqrt(2.0)  # rows x_a with x_a . x_b / n_0 = G0 (n_0 = 2)
    th = multi_input_vertex_recursion("relu", [100] * depth, 2.0, 0.0, G0)
    vals, ses = [], []
    for n in widths:
        r = _run("relu", n, depth, S, seed=500 + n, C_W=2.0, X=X)
        kappa, K = gram_four_point(r.preact_gram[:, -1], n)
        _assert_z(K.value, K.se, th.K[-1], f"kernel, n={n}")
        vals.append(n * kappa.value)
        ses.append(n * kappa.se)
    vals, ses = np.array(vals), np.array(ses)
    for p in range(3):
        for q in range(p, 3):
            fit = wls_extrapolate(widths, vals[:, p, q], ses[:, p, q], order=1)
            theory = th.V[-1][p, q]
            assert abs(fit.intercept - theory) < ZMAX * fit.intercept_se, (p, q, fit.intercept, fit.intercept_se,
                                                                           theory)
