"""vertex_any_p: the four-point vertex V_(ab)(cd) for any number of inputs.

Anchors: the P <= 2 code (multi_input_vertex_recursion, vertex_recursion) to 1e-12; deep-linear closed form
``V^(l) = n_{l-1} sum_{l'<l} (K_ac K_bd + K_ad K_bc) / n_l'``; ReLU scale invariance; a Monte-Carlo check with the
explicit engine (three inputs, 1/n extrapolation over n = 16, 32, 64, |z| < 4, fixed seeds).
"""
import math

import numpy as np
import pytest

from sigprop.kernels import simulate
from sigprop.theory.correlators import multi_input_vertex_recursion, vertex_recursion
from sigprop.theory.correlators.vertex_any_p import vertex_any_p
from sigprop.theory.errors import InputError
from sigprop.validation.correlator_estimators import gram_four_point
from sigprop.validation.stats import wls_extrapolate

G2 = np.array([[1.0, 0.4], [0.4, 0.7]])
G3 = np.array([[1.0, 0.3, 0.1], [0.3, 1.2, 0.4], [0.1, 0.4, 0.9]])
WIDTHS = [16, 32, 8, 20]


@pytest.mark.parametrize("act, C_W, C_b", [("relu", 2.0, 0.0), ("tanh", 1.0, 0.0), ("erf", 1.5, 0.1),
                                           ("gelu", 1.98305826, 0.17292239), ("leaky_relu", 1.9, 0.05)])
def test_two_inputs_and_one_input_match_existing(act, C_W, C_b):
    r = vertex_any_p(act, WIDTHS, C_W, C_b, G2)
    m = multi_input_vertex_recursion(act, WIDTHS, C_W, C_b, G2)
    np.testing.assert_allclose(r.K, m.K, rtol=1e-12, atol=0)
    assert np.max(np.abs(r.V - m.V)) <= 1e-12 * np.max(np.abs(m.V))
    r1 = vertex_any_p(act, WIDTHS, C_W, C_b, [[1.3]])
    v = vertex_recursion(act, WIDTHS, C_W, C_b, 1.3)
    assert np.max(np.abs(r1.V[:, 0, 0] - v.V)) <= 1e-12 * np.max(np.abs(v.V))


def _deep_linear_V(K, widths):
    pairs = [(a, b) for a in range(K.shape[0]) for b in range(a, K.shape[0])]
    W = np.array([[K[a, c] * K[b, d] + K[a, d] * K[b, c] for c, d in pairs] for a, b in pairs])
    return W, pairs


@pytest.mark.parametrize("P", [3, 4])
def test_deep_linear_closed_form(P):
    G = np.eye(P) * 0.5 + 0.3 * np.ones((P, P)) + np.diag(np.arange(P) * 0.1)
    widths = [7, 12, 5, 9, 30]
    C_W, C_b = 1.3, 0.2
    r = vertex_any_p("identity", widths, C_W, C_b, G)
    for l in range(1, len(widths)):
        W, _ = _deep_linear_V(r.K[l], widths)
        expected = widths[l - 1] * sum(1.0 / widths[j] for j in range(l)) * W
        # with a bias the layer-l' terms carry C_W^(2(l-l')) (K^(l') K^(l')), not K^(l) K^(l); recompute exactly
        exp2 = np.zeros_like(W)
        for j in range(l):
            Wj, _ = _deep_linear_V(r.K[j], widths)
            exp2 += C_W ** (2 * (l - j)) * Wj / widths[j]
        np.testing.assert_allclose(r.V[l], widths[l - 1] * exp2, rtol=1e-13)
        if C_b == 0:
            np.testing.assert_allclose(r.V[l], expected, rtol=1e-13)


def test_deep_linear_no_bias_is_wishart_sum():
    r = vertex_any_p("identity", [10] * 4, 1.0, 0.0, G3)
    for l in range(4):
        W, _ = _deep_linear_V(r.K[l], None)
        np.testing.assert_allclose(r.V[l], l * W, rtol=1e-13, atol=1e-15)


def test_relu_scale_invariance_and_permutation():
    r = vertex_any_p("relu", [16] * 4, 2.0, 0.0, G3)
    for a in range(3):
        p = r.pairs.index((a, a))
        np.testing.assert_allclose(r.V[:, p, p], 5 * np.arange(4) * G3[a, a] ** 2 * 4, rtol=1e-12)  # K = 2 G0
    r2 = vertex_any_p("relu", [16] * 4, 2.0, 0.0, 2.5 * G3)
    np.testing.assert_allclose(r2.V, 2.5**2 * r.V, rtol=1e-12, atol=1e-12)
    perm = [2, 0, 1]
    rp = vertex_any_p("relu", [16] * 4, 2.0, 0.0, G3[np.ix_(perm, perm)])
    where = {p: i for i, p in enumerate(r.pairs)}
    idx = [where[tuple(sorted((perm[a], perm[b])))] for a, b in rp.pairs]
    np.testing.assert_allclose(rp.V, r.V[:, idx][:, :, idx], rtol=1e-12, atol=1e-12)


def test_three_inputs_against_explicit_engine():
    depth, S, widths = 3, 4000, [16, 32, 64]
    X = np.linalg.cholesky(G3) * math.sqrt(3.0)  # rows x_a with x_a . x_b / n_0 = G3 (n_0 = 3)
    th = vertex_any_p("relu", [100] * depth, 2.0, 0.0, G3)
    vals, ses = [], []
    for n in widths:
        r = simulate(X, depth=depth, width=n, activation="relu", C_W=2.0, n_networks=S, seed=900 + n,
                     method="explicit")
        kappa, _ = gram_four_point(r.preact_gram[:, -1], n)
        vals.append(n * kappa.value)
        ses.append(n * kappa.se)
    vals, ses = np.array(vals), np.array(ses)
    for p in range(6):
        for q in range(p, 6):
            fit = wls_extrapolate(widths, vals[:, p, q], ses[:, p, q], order=1)
            z = (fit.intercept - th.V[-1][p, q]) / fit.intercept_se
            assert abs(z) < 4.0, (p, q, fit.intercept, fit.intercept_se, th.V[-1][p, q])


@pytest.mark.parametrize("kw, match", [
    (dict(G0=np.array([[1.0, 1.0], [1.0, 1.0]])), "positive definite"),
    (dict(G0=np.eye(13)), "P <= 12"),
    (dict(G0=np.ones(3)), "square"),
    (dict(activation="step"), "discontinuous"),
    (dict(C_W=0.0), "C_W"),
    (dict(widths=[4, 0]), "width"),
])
def test_bad_input(kw, match):
    args = dict(activation="relu", widths=[4, 4], C_W=2.0, C_b=0.0, G0=G2)
    args.update(kw)
    with pytest.raises(InputError, match=match):
        vertex_any_p(**args)
