"""Rainbow networks: the kernel recursion, its finite-width simulation, and procrustes.

The recursion ``K^(j) = C_b + a_j H^(j-1) + H^(j-1)[:, A] diag(b_j) H^(j-1)[A, :]`` is our derivation, so it is
checked against the simulation of :mod:`sigprop.kernels.rainbow` (fixed seeds):

* per-layer pre- and post-activation kernels of P = 4 inputs and m = 3 anchors (28 entries x 3 layers x 2 kinds),
  relu/tanh/gelu, a full-rank and a low-rank-plus-white covariance, at widths 64..1024 (independent networks per
  width), extrapolated in 1/width (``wls_extrapolate``, order 1): every |z| < Z_BOUND = 4.5 (1008 checks;
  ``z_bound(1008)`` at family level 0.99 is 4.3);
* the mean squared kernel error falls like 1/width: ``fit_power_law`` exponent interval (95%) contains -1
  (widths 128..1024; from 64 the small-width 1/width^2 terms steepen it, docs/rainbow.md);
* the rotation statement: kernels of two independent networks agree more as width grows (1 - CKA falls), raw
  activations do not (relative distance stays ~ sqrt(2)), Procrustes-aligned activations do (error falls).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.kernels import RainbowCovariance, simulate
from sigprop.kernels.rainbow import rainbow_layer_weights
from sigprop.theory.errors import InputError
from sigprop.theory.meanfield import kernel_recursion
from sigprop.theory.rainbow import (
    anchor_covariance,
    anchored_gram,
    first_layer_gram,
    psd_sqrt,
    rainbow_kernels,
)
from sigprop.theory.tangent import centered_kernel_alignment
from sigprop.validation.measures import procrustes
from sigprop.validation.stats import fit_power_law, wls_extrapolate


def _rainbow(act, X, C1, a, b=None, anchors=None, *, widths, method="numpy", n_networks=1, **kw):
    """``simulate`` with the rainbow covariance ``(C1, a, b, anchors)``, the NumPy engine unless ``method`` says."""
    return simulate(X, depth=len(widths), width=widths, activation=act, method=method, n_networks=n_networks,
                    covariance=RainbowCovariance(C1, a, b, anchors), **kw)


Z_BOUND = 4.5
WIDTHS = (64, 128, 256, 512, 1024)
NETWORKS = (96, 64, 48, 32, 24)  # per width: independent networks (first_network differs per width)
RATE_FROM = 1  # the rate fit uses WIDTHS[RATE_FROM:]
SEED = 5
P, M, D = 4, 3, 6


def _setup():
    rng = np.random.default_rng(11)
    Y = rng.standard_normal((P + M, D))
    Y *= math.sqrt(D) / np.linalg.norm(Y, axis=1, keepdims=True)  # |y|^2 / d = 1
    A = rng.standard_normal((D, D))
    c_full = A @ A.T / D + 0.5 * np.eye(D)
    c_full *= D / np.trace(c_full)
    c_low = anchor_covariance(0.15, [1.0, 1.0], rng.standard_normal((2, D)))  # rank 2 plus white
    c_low *= D / np.trace(c_low)
    return Y[:P], Y[P:], c_full, c_low


X, ANCHORS, C_FULL, C_LOW = _setup()
# (C1, a_2..a_3, b) per covariance kind; b scaled per activation so that the kernels stay of order one.
SCALES = {"relu": (1.6, 0.4, 5.0), "tanh": (1.6, 0.5, 6.0), "gelu": (1.6, 0.5, 7.0)}


def _config(act: str, kind: str):
    a_full, b_full, b_low = SCALES[act]
    if kind == "full":
        return C_FULL, [a_full, a_full], [[b_full, 0.5 * b_full, b_full], [0.5 * b_full, b_full, b_full]]
    # low rank: rank-2-plus-white first layer, a purely anchored (rank 3) second layer, mostly anchored third
    return C_LOW, [0.0, 0.6], [[b_low, 0.7 * b_low, b_low], [0.8 * b_low, b_low, 0.6 * b_low]]


CONFIGS = [(act, kind) for act in SCALES for kind in ("full", "low")]


def measure(seed: int = SEED) -> dict:
    """Per config: theory, per-width means/SEs of (pre, post) kernels, per-width mean squared error and its SE."""
    out = {}
    for act, kind in CONFIGS:
        C1, a, b = _config(act, kind)
        rk = rainbow_kernels(act, X, C1, a, b, ANCHORS)
        theory = np.stack([rk.preact, rk.postact])
        mean, se, mse, mse_se = [], [], [], []
        for w, (n, S) in enumerate(zip(WIDTHS, NETWORKS)):
            sim = _rainbow(act, X, C1, a, b, ANCHORS, widths=(n, n, n), n_networks=S, seed=seed,
                                   first_network=1000 * w)
            g = np.stack([sim.preact_gram, sim.postact_gram], axis=1)  # (S, 2, L, N, N)
            mean.append(g.mean(axis=0))
            se.append(g.std(axis=0, ddof=1) / math.sqrt(S))
            err = ((sim.postact_gram - rk.postact) ** 2).mean(axis=(1, 2, 3))  # per network, all layers
            mse.append(err.mean())
            mse_se.append(err.std(ddof=1) / math.sqrt(S))
        out[act, kind] = (theory, np.array(mean), np.array(se), np.array(mse), np.array(mse_se))
    return out


def extrapolation_z(theory, mean, se) -> np.ndarray:
    """z of the 1/width-extrapolated simulation against the recursion, every kernel entry (upper triangle)."""
    z = np.empty(theory.shape)
    N = theory.shape[-1]
    for k in range(theory.shape[0]):
        for layer in range(theory.shape[1]):
            for i in range(N):
                for j in range(i, N):
                    fit = wls_extrapolate(WIDTHS, mean[:, k, layer, i, j], se[:, k, layer, i, j], order=1)
                    z[k, layer, i, j] = z[k, layer, j, i] = (fit.intercept - theory[k, layer, i, j]) / fit.intercept_se
    return z


def rate_fit(mse, mse_se):
    """fit_power_law of the mean squared kernel error against width, widths WIDTHS[RATE_FROM:]."""
    w = np.array(WIDTHS[RATE_FROM:], dtype=float)
    return fit_power_law(w, mse[RATE_FROM:], sigma=mse_se[RATE_FROM:] / mse[RATE_FROM:])


def rotation(seed: int = SEED + 1, widths=(64, 128, 256, 512), pairs: int = 6):
    """Per width, over pairs of independent relu networks (full-rank covariance), last layer: mean 1 - CKA of the
    kernels, mean raw and Procrustes-aligned relative activation errors."""
    C1, a, b = _config("relu", "full")
    cka_gap, raw, aligned = [], [], []
    for w, n in enumerate(widths):
        sims = [_rainbow("relu", X, C1, a, b, ANCHORS, widths=(n, n, n), n_networks=pairs, seed=seed,
                                 first_network=5000 + 100 * w + 50 * r, keep_activations=True) for r in (0, 1)]
        Fa, Fb = sims[0].activations[-1], sims[1].activations[-1]
        Ka, Kb = sims[0].postact_gram[:, -1], sims[1].postact_gram[:, -1]
        cka_gap.append(np.mean([1.0 - centered_kernel_alignment(Ka[s], Kb[s]) for s in range(pairs)]))
        al = [procrustes(Fa[s], Fb[s]) for s in range(pairs)]
        raw.append(np.mean([x.raw_error for x in al]))
        aligned.append(np.mean([x.relative_error for x in al]))
    return widths, np.array(cka_gap), np.array(raw), np.array(aligned)


@pytest.fixture(scope="module")
def measured():
    return measure(SEED)


# --- theory: exact identities ------------------------------------------------------------------------------


@pytest.mark.parametrize("act", ["relu", "tanh", "gelu", "erf"])
def test_white_covariance_is_kernel_recursion_bitwise(act):
    G0 = X @ X.T / D
    for C_b in (0.0, 0.3):
        rk = rainbow_kernels(act, X, 1.7, [1.7, 1.7, 1.7], C_b=C_b)
        np.testing.assert_array_equal(rk.preact, kernel_recursion(act, G0, depth=4, C_W=1.7, C_b=C_b))
        # anchors with b = 0 change nothing on the inputs block
        rk2 = rainbow_kernels(act, X, 1.7, [1.7, 1.7, 1.7], np.zeros((3, M)), ANCHORS, C_b=C_b)
        np.testing.assert_array_equal(rk2.preact[:, :P, :P], rk.preact)


def test_first_layer_general_covariance_is_arc_cosine_on_sqrt_c_x():
    """relu with w ~ N(0, C/d) is the arc-cosine kernel of z = C^(1/2) x / sqrt(d) (docs/derivations.md, sec. 8)."""
    rk = rainbow_kernels("relu", X, C_FULL, [])
    Zs = X @ psd_sqrt(C_FULL) / math.sqrt(D)
    nrm = np.linalg.norm(Zs, axis=1)
    cos = np.clip(Zs @ Zs.T / np.outer(nrm, nrm), -1.0, 1.0)
    t = np.arccos(cos)
    want = np.outer(nrm, nrm) * (np.sin(t) + (np.pi - t) * np.cos(t)) / (2 * np.pi)
    np.testing.assert_allclose(rk.postact[0], want, rtol=1e-12, atol=1e-13)


def test_data_defined_first_layer_is_the_anchored_gram_of_the_inputs():
    Y = np.vstack([X, ANCHORS])
    C1 = anchor_covariance(0.7, [0.3, 1.1, 0.5], ANCHORS)
    np.testing.assert_allclose(first_layer_gram(Y, C1, 0.0), anchored_gram(Y @ Y.T / D, 0.7, [0.3, 1.1, 0.5], P),
                               rtol=1e-12, atol=1e-14)


_ACTS = st.sampled_from(["relu", "tanh", "gelu", "erf", "sin"])


@st.composite
def _problems(draw):
    p = draw(st.integers(1, 4))
    m = draw(st.integers(0, 3))
    d = draw(st.integers(1, 4))
    L = draw(st.integers(1, 3))
    floats = st.floats(-2.0, 2.0, allow_nan=False)
    Xh = np.array(draw(st.lists(floats, min_size=p * d, max_size=p * d))).reshape(p, d)
    Zh = np.array(draw(st.lists(floats, min_size=m * d, max_size=m * d))).reshape(m, d)
    a = draw(st.lists(st.floats(0.0, 2.0), min_size=L - 1, max_size=L - 1))
    b = np.array(draw(st.lists(st.floats(0.0, 2.0), min_size=(L - 1) * m, max_size=(L - 1) * m))).reshape(L - 1, m)
    c = draw(st.floats(0.1, 2.0))
    return draw(_ACTS), Xh, Zh, c, a, b


@settings(max_examples=examples(40), deadline=None)
@given(_problems())
def test_rainbow_kernels_are_symmetric_psd(problem):
    act, Xh, Zh, c, a, b = problem
    rk = rainbow_kernels(act, Xh, c, a, b, Zh)
    for Kset in (rk.preact, rk.postact):
        np.testing.assert_array_equal(Kset, np.swapaxes(Kset, 1, 2))
        for K in Kset:
            lam = np.linalg.eigvalsh(K)
            assert lam[0] >= -1e-9 * max(1.0, abs(lam[-1]))


@settings(max_examples=examples(30), deadline=None)
@given(_problems(), st.randoms(use_true_random=False))
def test_anchor_permutation_and_splitting(problem, rnd):
    """Permuting anchors (with their b columns) permutes the kernel; splitting b_k over two copies of z_k is a
    no-op on every other block."""
    act, Xh, Zh, c, a, b = problem
    m = Zh.shape[0]
    if m == 0:
        return
    p = Xh.shape[0]
    rk = rainbow_kernels(act, Xh, c, a, b, Zh)
    perm = list(range(m))
    rnd.shuffle(perm)
    rkp = rainbow_kernels(act, Xh, c, a, b[:, perm], Zh[perm])
    idx = list(range(p)) + [p + k for k in perm]
    np.testing.assert_allclose(rkp.preact, rk.preact[:, idx][:, :, idx], rtol=1e-12, atol=1e-12)
    b2 = np.concatenate([b, b[:, :1]], axis=1)
    b2[:, 0] *= 0.5
    b2[:, -1] *= 0.5
    rks = rainbow_kernels(act, Xh, c, a, b2, np.vstack([Zh, Zh[:1]]))
    np.testing.assert_allclose(rks.preact[:, :p + m, :p + m], rk.preact, rtol=1e-11, atol=1e-11)


# --- simulation: exact identities --------------------------------------------------------------------------


def test_simulation_preactivations_are_explicit_rows_times_activations():
    a, b = [0.8, 1.2], [[0.5, 0.0, 2.0], [1.0, 0.3, 0.7]]
    sim = _rainbow("tanh", X, C_FULL, a, b, ANCHORS, widths=(40, 30, 20), n_networks=2, seed=9,
                           first_network=7, keep_activations=True)
    for s in range(2):
        for layer in (2, 3):
            h = sim.activations[layer - 2][s]
            W = rainbow_layer_weights(h[P:], a[layer - 2], b[layer - 2], sim.widths[layer - 1], seed=9,
                                      network=7 + s, layer=layer)
            z = h @ W.T
            np.testing.assert_allclose(z @ z.T / W.shape[0], sim.preact_gram[s, layer - 1], rtol=1e-11, atol=1e-12)


def test_first_layer_rows_have_covariance_c1_over_d():
    """The first layer multiplies the inputs by C1^(1/2): its Gram is exactly Y C1^(1/2) G^T G C1^(1/2) Y^T / (d n)."""
    from sigprop.kernels.rainbow import STREAM_RAINBOW_WHITE
    from sigprop.kernels.rng import normals

    sim = _rainbow("relu", X, C_FULL, [], widths=(50,), n_networks=1, seed=4)
    G = normals(4, STREAM_RAINBOW_WHITE, 0, 1, 50, D)
    Wt = psd_sqrt(C_FULL) @ G.T / math.sqrt(D)
    np.testing.assert_allclose(sim.preact_gram[0, 0], (X @ Wt) @ (X @ Wt).T / 50, rtol=1e-12, atol=1e-13)


def test_hidden_rows_have_the_data_defined_covariance():
    """Rows of the explicit hidden-layer matrix: empirical covariance over 40000 rows against
    (a I + sum_k b_k h_k h_k^T / n) / n, entry by entry, |z| < Z_BOUND."""
    rng = np.random.default_rng(3)
    n, rows = 5, 40000
    H_A = rng.standard_normal((2, n))
    a, b = 0.6, [1.5, 0.4]
    W = rainbow_layer_weights(H_A, a, b, rows, seed=2, network=0, layer=2)
    want = anchor_covariance(a, b, H_A) / n
    prod = W[:, :, None] * W[:, None, :]
    z = (prod.mean(axis=0) - want) / (prod.std(axis=0, ddof=1) / math.sqrt(rows))
    assert np.max(np.abs(z)) < Z_BOUND, np.round(z, 2)
    assert np.max(np.abs(W.mean(axis=0)) / (W.std(axis=0) / math.sqrt(rows))) < Z_BOUND


# --- simulation against the recursion --------------------------------------------------------------------


@pytest.mark.parametrize("act,kind", CONFIGS)
def test_recursion_matches_simulation_extrapolated_in_one_over_width(measured, act, kind):
    theory, mean, se, _, _ = measured[act, kind]
    z = extrapolation_z(theory, mean, se)
    assert np.max(np.abs(z)) < Z_BOUND, f"max |z| = {np.max(np.abs(z)):.2f}"
    assert np.sqrt(np.mean(z ** 2)) < 2.0  # no systematic inflation either


@pytest.mark.parametrize("act,kind", CONFIGS)
def test_mean_squared_kernel_error_falls_like_one_over_width(measured, act, kind):
    fit = rate_fit(*measured[act, kind][3:])
    assert fit.contains(-1.0), (fit.exponent, fit.ci_low, fit.ci_high)


def test_rotation_statement_kernels_agree_activations_only_after_alignment():
    widths, cka_gap, raw, aligned = rotation()
    assert np.all(raw > 1.0)  # independent draws: |h_a - h_b| ~ sqrt(2) |h_b|, at every width ...
    assert abs(fit_power_law(widths, raw).exponent) < 0.05  # ... and it does not fall
    assert fit_power_law(widths, cka_gap).ci_high < 0  # 1 - CKA falls (measured ~ width^-0.9)
    assert fit_power_law(widths, aligned).ci_high < 0  # the aligned error falls (measured ~ width^-0.5)
    assert aligned[-1] < 0.25 * raw[-1]


# --- procrustes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("N,n", [(30, 5), (8, 8), (5, 12)])
def test_procrustes_against_scipy(N, n):
    rng = np.random.default_rng(N * 100 + n)
    Fa, Fb = rng.standard_normal((N, n)), rng.standard_normal((N, n))
    al = procrustes(Fa, Fb)
    R, _ = scipy.linalg.orthogonal_procrustes(Fa, Fb)
    np.testing.assert_allclose(al.rotation.T @ al.rotation, np.eye(n), atol=1e-12)
    err_scipy = np.linalg.norm(Fa @ R - Fb) / np.linalg.norm(Fb)
    assert al.relative_error == pytest.approx(err_scipy, rel=1e-12, abs=1e-14)
    if N >= n:  # F_a^T F_b of full rank: the minimiser is unique
        np.testing.assert_allclose(al.rotation, R, atol=1e-10)


@settings(max_examples=examples(30), deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_procrustes_recovers_a_rotation_and_is_optimal(N, n, seed):
    rng = np.random.default_rng(seed)
    Fb = rng.standard_normal((N, n))
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    al = procrustes(Fb @ Q.T, Fb)
    assert al.relative_error < 1e-9
    Fa = rng.standard_normal((N, n))
    best = procrustes(Fa, Fb).relative_error
    assert best <= np.linalg.norm(Fa @ Q - Fb) / np.linalg.norm(Fb) + 1e-12


# --- bad input ---------------------------------------------------------------------------------------------


def test_bad_input_is_an_input_error_naming_the_argument():
    bad_c = np.diag([1.0, 1.0, 1.0, 1.0, 1.0, -0.5])
    with pytest.raises(InputError, match=r"C1 must be positive semi-definite: most negative eigenvalue -0.5"):
        rainbow_kernels("relu", X, bad_c, [1.0])
    with pytest.raises(InputError, match=r"C1 must be positive semi-definite: most negative eigenvalue -0.5"):
        _rainbow("relu", X, bad_c, [1.0], widths=(8, 8))
    asym = np.eye(D)
    asym[0, 1] = 0.1
    with pytest.raises(InputError, match="C1 must be symmetric"):
        _rainbow("relu", X, asym, [1.0], widths=(8, 8))
    with pytest.raises(InputError, match="C1 must be a scalar or a"):
        rainbow_kernels("relu", X, np.eye(D + 1), [1.0])
    with pytest.raises(InputError, match="C1 must be a finite number >= 0"):
        rainbow_kernels("relu", X, -1.0, [1.0])
    with pytest.raises(InputError, match="a must be >= 0"):
        _rainbow("relu", X, 1.0, [1.0, -0.1], widths=(8, 8, 8))
    with pytest.raises(InputError, match="b must be >= 0"):
        _rainbow("relu", X, 1.0, [1.0], [[0.1, -1.0, 0.0]], ANCHORS, widths=(8, 8))
    with pytest.raises(InputError, match=r"b must have shape \(len\(a\), m\)"):
        rainbow_kernels("relu", X, 1.0, [1.0], [[0.1, 1.0]], ANCHORS)
    with pytest.raises(InputError, match="anchors must have the input dimension"):
        _rainbow("relu", X, 1.0, [1.0], [[1.0]], np.ones((1, D + 1)), widths=(8, 8))
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(InputError, match="X must be finite"):
        _rainbow("relu", Xn, 1.0, [1.0], widths=(8, 8))
    with pytest.raises(InputError, match="anchors must be finite"):
        rainbow_kernels("relu", X, 1.0, [1.0], [[1.0]], np.full((1, D), np.inf))
    with pytest.raises(InputError, match=r"depth must be len\(covariance.a\) \+ 1 = 2"):
        simulate(X, depth=1, width=8, activation="relu", covariance=RainbowCovariance(1.0, [1.0]), n_networks=1)
    with pytest.raises(InputError, match="b must be >= 0"):
        anchored_gram(np.eye(3), 1.0, [-1.0], 2)
    with pytest.raises(InputError, match="same number of samples"):
        procrustes(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(InputError, match="same number of neurons"):
        procrustes(np.ones((3, 2)), np.ones((3, 4)))
    with pytest.raises(InputError, match="F_a must be finite"):
        procrustes(np.full((3, 2), np.nan), np.ones((3, 2)))
    with pytest.raises(InputError, match="F_b is identically zero"):
        procrustes(np.ones((3, 2)), np.zeros((3, 2)))


def test_rounding_sized_asymmetry_and_negativity_are_accepted_not_changed():
    C = C_FULL.copy()
    C[0, 1] += 1e-14
    assert np.allclose(psd_sqrt(C) @ psd_sqrt(C), C, atol=1e-12)
    lam, V = np.linalg.eigh(C_FULL)
    lam[0] = -1e-14
    Cn = (V * lam) @ V.T
    rk = rainbow_kernels("relu", X, Cn, [])
    assert np.all(np.isfinite(rk.preact))
