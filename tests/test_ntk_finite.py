"""finite_width_ntk: the NTK at finite width (mean and its 1/n shift, D, F, A, B) for any number of inputs.

Anchors: the infinite-width NTK of sigprop.theory.tangent; the vertex and the preactivation shift of the existing
recursions; deep linear networks (the NTK is proportional to the Wishart product of the upper layers); the ReLU
family's diagonal NTK mean, exact at every width (sign-flip symmetry of each neuron's incoming weights); scale
invariance; one input inside two.  Monte-Carlo (explicit engine, backward pass, fixed seeds): the network's scalar
output is a last layer of width 1 (C_W = 1, C_b = 0); n x (MC - infinite width) extrapolated linearly in 1/n from
n = 16, 32 against the theory, |z| < 4 standard errors.
"""
import math

import numpy as np
import pytest

from sigprop.kernels import simulate
from sigprop.theory.correlators import vertex_any_p, vertex_recursion
from sigprop.theory.correlators.ntk_finite import finite_width_ntk
from sigprop.theory.errors import InputError
from sigprop.theory.tangent import tangent_kernels
from sigprop.validation.stats import wls_extrapolate

G2 = np.array([[1.0, 0.3], [0.3, 0.8]])
G3 = np.array([[1.0, 0.3, 0.1], [0.3, 1.2, 0.4], [0.1, 0.4, 0.9]])


def _output(act, C, Cb, G0, L, lam_out=1.0, width=100):
    """Theory for simulate's scalar output f = v . phi(z^(L)) / sqrt(n_L): a layer L+1 of width 1."""
    return finite_width_ntk(act, [width] * L + [1], [C] * L + [1.0], [Cb] * L + [0.0], [Cb] * L + [0.0],
                            [C] * L + [lam_out], G0)


@pytest.mark.parametrize("act, C, Cb", [("relu", 2.0, 0.0), ("tanh", 1.5, 0.1)])
def test_infinite_width_is_tangent_module(act, C, Cb):
    t = tangent_kernels(act, G2, 3, C, Cb)
    r = _output(act, C, Cb, G2, 3, lam_out=0.0)
    np.testing.assert_allclose(r.Theta[-1], t.tangent.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(r.K[:-1], t.preact, rtol=1e-12)


def test_per_layer_learning_rates_select_tangent_layers():
    t = tangent_kernels("erf", [[0.7]], 3, 1.6, 0.2)
    for k in range(3):
        lam_b, lam_w = np.zeros(4), np.zeros(4)
        lam_b[k], lam_w[k] = 0.2, 1.6
        r = finite_width_ntk("erf", [50, 50, 50, 1], [1.6] * 3 + [1.0], [0.2] * 3 + [0.0], lam_b, lam_w, [[0.7]])
        assert abs(r.Theta[-1, 0, 0] - t.tangent[k, 0, 0]) <= 1e-13 * t.tangent[k, 0, 0]


@pytest.mark.parametrize("act, C, Cb", [("relu", 2.0, 0.0), ("tanh", 1.0, 0.0), ("erf", 1.5, 0.1)])
def test_vertex_and_shift_match_existing(act, C, Cb):
    widths = [16, 32, 8]
    r = finite_width_ntk(act, widths, C, Cb, G0=G2)
    v = vertex_any_p(act, widths, C, Cb, G2)
    pidx = np.array([[v.pairs.index((min(a, b), max(a, b))) for b in range(2)] for a in range(2)])
    full = v.V[:, pidx[:, :, None, None], pidx[None, None, :, :]]
    assert np.max(np.abs(r.V - full)) <= 1e-12 * np.max(np.abs(full))
    r1 = finite_width_ntk(act, widths, C, Cb, G0=[[1.3]])
    k = vertex_recursion(act, widths, C, Cb, 1.3)
    assert np.max(np.abs(r1.dK[:, 0, 0] - k.dK)) <= 1e-11 * np.max(np.abs(k.dK)) + 1e-12 * np.max(k.K)


def test_deep_linear_ntk_is_wishart_product():
    # lambda on layer 1 only: H^(l) = lambda G0 Q, E_{W1}[z z^T] = C_W G0 Q with Q = M M^T (M = W^(l)..W^(2)),
    # so D = A = 0 and F, B are V's Wishart coefficient: V_(aa)(aa) = 2 n C_W^2 G0_aa^2 c.
    widths, C, lam = [7, 12, 5, 9, 30], 1.3, 0.7
    r = finite_width_ntk("identity", widths, C, 0.0, 0.0, [lam, 0, 0, 0, 0], G3)
    scale = np.max(np.abs(r.B))
    assert np.max(np.abs(r.D)) < 1e-14 * scale and np.max(np.abs(r.A)) < 1e-14 * scale
    assert np.max(np.abs(r.dTheta)) < 1e-12 * np.max(r.Theta) and np.max(np.abs(r.dK)) < 1e-12 * np.max(r.K)
    GG = G3[:, None, :, None] * G3[None, :, None, :]  # [a1, a3, a2, a4] -> G_a1a2 G_a3a4
    for l in range(1, 5):
        c = r.V[l, 0, 0, 0, 0] / (2 * C**2 * G3[0, 0] ** 2)
        np.testing.assert_allclose(r.F[l], lam * C * GG * c, rtol=1e-13)
        np.testing.assert_allclose(r.B[l], lam**2 * GG * c, rtol=1e-13)


def test_deep_linear_has_no_mean_shift_with_biases():
    r = finite_width_ntk("identity", [5, 9, 4], [1.3, 0.8, 1.1], [0.2, 0.1, 0.3], [0.5, 1.0, 0.2], [1.0, 2.0, 0.4],
                         G3)
    assert np.max(np.abs(r.dTheta)) < 1e-12 * np.max(r.Theta) and np.max(np.abs(r.dK)) < 1e-12 * np.max(r.K)
    assert np.max(np.abs(r.B[2])) > 0.1


@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_relu_family_diagonal_mean_has_no_shift(act):
    r = finite_width_ntk(act, [16, 8, 32, 1], [2.0, 1.7, 2.2, 1.0], 0.1, [0.1, 0.3, 0.0, 0.0], [2.0, 1.0, 0.5, 1.0],
                         G2)
    scale = np.max(np.abs(r.Theta))
    for a in range(2):
        assert np.max(np.abs(r.dTheta[:, a, a])) < 1e-10 * scale
        assert np.max(np.abs(r.dK[:, a, a])) < 1e-10 * scale
    assert abs(r.Theta1[-1, 0, 1]) > 0.05 * scale


def test_relu_diagonal_mean_exact_at_width_three():
    # E[Theta_aa] = Theta_aa at every width (sign flip of a neuron's incoming weights and bias), even n = 3
    L, C, Cb, S = 3, 2.0, 0.1, 30000
    X = np.linalg.cholesky(G2) * math.sqrt(2.0)
    r = simulate(X, depth=L, width=3, activation="relu", C_W=C, C_b=Cb, n_networks=S, seed=11, method="explicit",
                 backward=True)
    th = r.tangent_gram.sum(axis=1) + r.postact_gram[:, -1]
    theory = _output("relu", C, Cb, G2, L).Theta[-1]
    for a in range(2):
        z = (th[:, a, a].mean() - theory[a, a]) / (th[:, a, a].std(ddof=1) / math.sqrt(S))
        assert abs(z) < 4.0, (a, z)


def test_relu_scale_invariance():
    r = finite_width_ntk("relu", [16, 16], 2.0, 0.0, 0.0, 1.5, G2)
    r2 = finite_width_ntk("relu", [16, 16], 2.0, 0.0, 0.0, 1.5, 2.5 * G2)
    for name, power in (("Theta", 1), ("dTheta", 1), ("K", 1), ("D", 2), ("F", 2), ("A", 2), ("B", 2)):
        x, y = getattr(r, name), getattr(r2, name)
        assert np.max(np.abs(y - 2.5**power * x)) <= 1e-9 * max(np.max(np.abs(y)), 1e-300), name


def test_one_input_is_a_slice_of_two():
    r2 = finite_width_ntk("tanh", [16, 8, 32], 1.5, 0.1, G0=G2)
    r1 = finite_width_ntk("tanh", [16, 8, 32], 1.5, 0.1, G0=G2[:1, :1])
    for name in ("K", "dK", "Theta", "dTheta"):
        np.testing.assert_allclose(getattr(r2, name)[:, :1, :1], getattr(r1, name), rtol=1e-10, atol=1e-14)
    for name in ("V", "D", "F", "A", "B"):
        np.testing.assert_allclose(getattr(r2, name)[:, :1, :1, :1, :1], getattr(r1, name), rtol=1e-10, atol=1e-14)


def test_mean_shift_by_conditional_expectation_given_layer_one():
    # lambda on layer 1 only, depth 2 + readout, one input: given layer 1, Stein's lemma in W^(2) gives exactly
    # E[Theta_out | layer 1] = S g(Sigma) + Omega 2 g'(Sigma), g(K) = <tanh'^2>_K, with S = C theta mean(s'^2),
    # Sigma = C mean(s^2), Omega = C^2 theta mean(s'^2 s^2) / n (theta = lambda G0): the F, d and Hessian terms.
    C, n, S = 1.5, 8, 200_000
    x, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()

    def g(K):
        return (np.cosh(np.sqrt(K)[..., None] * x) ** -4 * w).sum(-1)

    z = np.random.default_rng(3).standard_normal((S, n)) * math.sqrt(C)
    s2, d2 = np.tanh(z) ** 2, np.cosh(z) ** -4
    Sig, h = C * s2.mean(1), 1e-5
    X = C * C * d2.mean(1) * g(Sig) + C**2 / n * C * (d2 * s2).mean(1) * (g(Sig + h) - g(Sig - h)) / h
    r = finite_width_ntk("tanh", [100, 100, 1], [C, C, 1.0], 0.0, 0.0, [C, 0.0, 0.0], [[1.0]])
    y, se = n * (X.mean() - r.Theta[-1, 0, 0]), n * X.std(ddof=1) / math.sqrt(S)
    assert abs(y - r.Theta1[-1, 0, 0]) < 4 * se, (y, se, r.Theta1[-1, 0, 0])  # O(1/n^2): ~0.0013 at n = 8
    assert r.Theta1[-1, 0, 0] > 6 * se  # the check resolves the 1/n term


def _mc_coefficients(act, C, Cb, G0, L, widths, S, seed):
    """n (MC - infinite width) per width: the output NTK's mean, its covariance, its covariance with phi^T phi/n."""
    P = G0.shape[0]
    X = np.linalg.cholesky(G0) * math.sqrt(P)
    th = _output(act, C, Cb, G0, L)
    rows = []
    for n in widths:
        r = simulate(X, depth=L, width=n, activation=act, C_W=C, C_b=Cb, n_networks=S, seed=seed + n,
                     method="explicit", backward=True)
        t = r.tangent_gram.sum(axis=1) + r.postact_gram[:, -1]  # lambda = C per layer, lambda_W = 1 on the readout
        c, g = t - t.mean(0), r.postact_gram[:, -1] - r.postact_gram[:, -1].mean(0)
        cov = np.einsum("sab,scd->sabcd", c, c) * S / (S - 1)
        cross = np.einsum("sab,scd->sabcd", c, g) * S / (S - 1)
        rows.append({k: (n * v.mean(0) - (n * base if base is not None else 0), n * v.std(0, ddof=1) / math.sqrt(S))
                     for k, v, base in (("mean", t, th.Theta[-1]), ("cov", cov, None), ("D", cross, None))})
    theory = {"mean": th.Theta1[-1], "cov": th.one_neuron_ntk_covariance()[-1], "D": th.D[-1]}
    return rows, theory


@pytest.mark.parametrize("act, C, Cb, G0", [("relu", 2.0, 0.0, G2), ("tanh", 1.5, 0.1, G2),
                                            ("tanh", 1.2, 0.0, G2[:1, :1])])
def test_against_explicit_engine(act, C, Cb, G0):
    widths = [16, 32]
    rows, theory = _mc_coefficients(act, C, Cb, G0, 3, widths, 4000, 700)
    for key, T in theory.items():
        for idx in np.ndindex(T.shape):
            fit = wls_extrapolate(widths, [r[key][0][idx] for r in rows], [r[key][1][idx] for r in rows], order=1)
            z = (fit.intercept - T[idx]) / fit.intercept_se
            assert abs(z) < 4.0, (key, idx, fit.intercept, fit.intercept_se, T[idx])


@pytest.mark.parametrize("kw, match", [
    (dict(G0=np.array([[1.0, 1.0], [1.0, 1.0]])), "positive definite"),
    (dict(G0=np.eye(7)), "P <= 6"),
    (dict(activation="step"), "discontinuous"),
    (dict(C_W=[2.0, 2.0, 2.0]), "one entry per layer"),
    (dict(C_W=[2.0, 0.0]), "C_W"),
    (dict(lambda_W=-1.0), "lambda_W"),
    (dict(lambda_b=[0.1, np.nan]), "lambda_b"),
    (dict(C_b="x"), "C_b"),
    (dict(widths=[4, 0]), "width"),
])
def test_bad_input(kw, match):
    args = dict(activation="relu", widths=[4, 4], C_W=2.0, C_b=0.0, G0=G2)
    args.update(kw)
    with pytest.raises((InputError, TypeError), match=match):
        finite_width_ntk(**args)


def test_degenerate_kernel_is_named():
    with pytest.raises(InputError, match="finite_width_ntk: the kernel of inputs 0 and 1 became degenerate"):
        finite_width_ntk("relu", [4, 4, 4], 2.0, 1e10, G0=G2)
