"""The gram method (exact Gram-chain sampling): PSD factorisation, agreement with the explicit-weight
simulation in distribution, exact finite-width moments of deep linear networks, the mean-field limit,
rank-deficient covariances, and independence of threads/batching."""
from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.kernels import SimulationOverflowWarning, simulate
from sigprop.kernels.gram_cpu import run_gram_cpu
from sigprop.kernels.gram_device import PSD_RTOL, factor_psd
from sigprop.theory.activations import activation
from sigprop.theory.meanfield import kernel_recursion
from sigprop.validation.stats import mean_se, ratio_se, var_se, z_bound


@numba.njit
def _factor(K, tol):
    P = K.shape[0]
    A = np.empty((P, P))
    Wk = np.empty((P, P))
    perm = np.empty(P, dtype=np.int64)
    r = factor_psd(K, A, Wk, perm, P, tol)
    return r, A


# ------------------------------------------------------------------------------------------
# Exact factorisation of (possibly singular) covariances
# ------------------------------------------------------------------------------------------
@settings(max_examples=examples(60), deadline=None)
@given(P=st.integers(1, 12), rank=st.integers(0, 12), seed=st.integers(0, 2**31), dup=st.booleans())
def test_factor_psd_reproduces_rank_deficient_matrices(P, rank, seed, dup):
    rank = min(rank, P)
    g = np.random.default_rng(seed)
    h = g.normal(size=(rank, P))
    if dup and P >= 2:
        h[:, -1] = h[:, 0]  # two identical inputs
    K = h.T @ h / max(rank, 1)
    K = 0.5 * (K + K.T)
    r, A = _factor(K, PSD_RTOL)
    # ranks, not floats: both count eigenvalues above thresholds (PSD_RTOL, 1e-9) far above the rounding of K
    # (BLAS, ~1e-16 relative, CPU-dependent) and below K's nonzero eigenvalues in practice
    assert r == np.linalg.matrix_rank(K, tol=1e-9 * max(K.max(), 1e-300)) or (r == 0 and rank == 0)
    assert np.all(A[:, r:] == 0.0)
    scale = max(np.abs(K).max(), 1e-300)
    assert np.abs(A @ A.T - K).max() <= 10 * PSD_RTOL * scale


def test_factor_psd_flags_non_psd_and_non_finite():
    assert _factor(np.array([[1.0, 2.0], [2.0, 1.0]]), PSD_RTOL)[0] == -1
    assert _factor(np.array([[0.0, 1.0], [1.0, 0.0]]), PSD_RTOL)[0] == -1
    assert _factor(np.array([[1.0, 0.0], [0.0, -0.5]]), PSD_RTOL)[0] == -1
    assert _factor(np.array([[1.0, 0.5], [0.4, 1.0]]), PSD_RTOL)[0] == -1  # not symmetric
    assert _factor(np.array([[1.0, np.nan], [np.nan, 1.0]]), PSD_RTOL)[0] == -2
    assert _factor(np.array([[np.inf]]), PSD_RTOL)[0] == -2
    # rounding-level negative pivot of an exactly singular matrix: rank 1, no error
    r, A = _factor(np.array([[1.0, 1.0], [1.0, 1.0 - 1e-15]]), PSD_RTOL)
    assert r == 1 and np.allclose(A @ A.T, [[1, 1], [1, 1]], atol=1e-15)
    r, A = _factor(np.zeros((3, 3)), PSD_RTOL)
    assert r == 0 and np.all(A == 0)


# ------------------------------------------------------------------------------------------
# Gram method == explicit weights, in distribution
# ------------------------------------------------------------------------------------------
def _stat_arrays(res):
    iu = np.triu_indices(res.preact_gram.shape[-1])
    return {"pre": res.preact_gram[:, :, iu[0], iu[1]], "post": res.postact_gram[:, :, iu[0], iu[1]],
            "m4": res.preact_m4}


def _distribution_z(a, b):
    """z-scores of the differences of means and of variances of two independent samples (axis 0)."""
    zs = []
    for est in (mean_se, var_se):
        ma, sa = est(a)
        mb, sb = est(b)
        zs.append(np.ravel((ma - mb) / np.sqrt(sa**2 + sb**2 + 1e-300)))
    return np.concatenate(zs)


def _assert_same_distribution(r1, r2):
    s1, s2 = _stat_arrays(r1), _stat_arrays(r2)
    z = np.concatenate([_distribution_z(s1[k], s2[k]) for k in s1])
    bound = max(4.0, z_bound(z.size, 0.999))
    assert np.all(np.isfinite(z))
    assert np.abs(z).max() < bound, (np.abs(z).max(), bound)
    return z


X2 = np.array([[1.2, -0.3, 0.5, 0.9], [0.4, 1.1, -0.7, 0.2]])


@pytest.mark.parametrize("act,C_W,C_b,residual,norm", [
    ("relu", 2.0, 0.0, 0.0, None),
    ("tanh", 1.5, 0.1, 0.0, None),
    ("tanh", 1.0, 0.0, 0.5, None),
    ("relu", 2.0, 0.2, 0.3, "ln_post"),
    ("relu", 2.0, 0.0, 0.0, "rms_pre"),
    ("tanh", 1.0, 0.0, 0.0, "ln_pre"),
    ("gelu", 1.5, 0.0, 0.6, "rms_post"),
])
def test_gram_matches_explicit_in_distribution(act, C_W, C_b, residual, norm):
    kw = dict(depth=3, width=[16, 20, 14], activation=act, C_W=C_W, C_b=C_b, n_networks=400, residual=residual,
              norm=norm)
    g = simulate(X2, method="gram", seed=11, **kw)
    e = simulate(X2, method="explicit", seed=12, **kw)
    z = _assert_same_distribution(g, e)
    assert z.size == 2 * 3 * (3 + 3 + 2)


def test_gram_differs_from_a_wrong_law():
    """Sensitivity: the same comparison detects a 15% change of C_W."""
    kw = dict(depth=3, width=16, activation="relu", C_b=0.0, n_networks=400)
    g = simulate(X2, method="gram", seed=1, C_W=2.0, **kw)
    e = simulate(X2, method="explicit", seed=2, C_W=2.3, **kw)
    s1, s2 = _stat_arrays(g), _stat_arrays(e)
    z = np.concatenate([_distribution_z(s1[k], s2[k]) for k in s1])
    assert np.abs(z).max() > 6


# ------------------------------------------------------------------------------------------
# Deep linear networks: E[z^4] / (3 E[z^2]^2) = prod_{l' < l} (1 + 2/n)  (docs/derivations.md, 3.1)
# ------------------------------------------------------------------------------------------
def _fourth_ratio(m4, m2):
    """R = mean(m4) / (3 mean(m2)^2) per layer, with its delta-method SE."""
    S = m4.shape[0]
    a, b = m4.mean(0), m2.mean(0)
    R = a / (3 * b * b)
    ga, gb = 1 / (3 * b * b), -2 * a / (3 * b**3)
    ca, cb = m4 - a, m2 - b
    var = (ga**2 * (ca * ca).sum(0) + 2 * ga * gb * (ca * cb).sum(0) + gb**2 * (cb * cb).sum(0)) / (S - 1) / S
    return R, np.sqrt(var)


@pytest.mark.parametrize("n,S", [(4, 100_000), (16, 20_000)])
def test_deep_linear_fourth_moment_is_exact_wick_product(n, S):
    X = np.full((1, 5), 0.8)
    r = simulate(X, depth=8, width=n, activation="identity", C_W=1.3, n_networks=S, seed=7)
    R, se = _fourth_ratio(r.preact_m4[:, :, 0], r.preact_m2[:, :, 0])
    theory = np.array([(1 + 2 / n) ** l for l in range(8)])
    z = (R - theory) / se
    assert np.all(np.abs(z) < 4), z
    # and sensitive: the infinite-width value 1 is clearly rejected (the deepest layers are the noisiest)
    assert np.max((R - 1) / se) > 8
    # E[z^2] = C_W^l G_0 exactly
    m, s = mean_se(r.preact_m2[:, :, 0])
    assert np.all(np.abs(m - 1.3 ** np.arange(1, 9) * 0.64) < 4 * s)


# ------------------------------------------------------------------------------------------
# Mean-field limit: E[preact_gram] -> K^(l) with a 1/n bias
# ------------------------------------------------------------------------------------------
def test_mean_gram_approaches_meanfield_with_1_over_n_bias():
    X = np.array([[1.0, 0.0], [0.3, math.sqrt(1 - 0.09)]]) * math.sqrt(2)
    act = activation("tanh")
    theory = kernel_recursion(act, X @ X.T / 2, 6, 1.0, 0.0)
    rel = {}
    for n, S in ((8, 10_000), (64, 4000), (512, 1500)):
        r = simulate(X, depth=6, width=n, activation=act, C_W=1.0, n_networks=S, seed=5)
        m, se = mean_se(r.preact_gram)
        z = (m - theory) / se
        rel[n] = ((m - theory)[-1, 0, 0] / theory[-1, 0, 0], se[-1, 0, 0] / theory[-1, 0, 0])
        if n == 8:
            assert z[-1, 0, 0] < -6 and z[-1, 1, 1] < -6  # finite-width bias clearly visible
        if n == 512:
            assert np.all(np.abs(z) < 4), z  # within noise
    # the bias shrinks like 1/n: n * bias agrees between n = 64 and n = 512 within errors
    d = 64 * rel[64][0] - 512 * rel[512][0]
    sd = math.hypot(64 * rel[64][1], 512 * rel[512][1])
    assert abs(d) < 4 * sd
    assert abs(rel[8][0]) > 5 * abs(rel[512][0])


# ------------------------------------------------------------------------------------------
# Rank-deficient covariances
# ------------------------------------------------------------------------------------------
def test_more_inputs_than_width_is_exact():
    X = np.random.default_rng(3).normal(size=(6, 5))
    kw = dict(depth=3, width=3, activation="tanh", C_W=1.5, n_networks=300)
    g = simulate(X, method="gram", seed=1, **kw)
    for arr in (g.preact_gram, g.postact_gram):
        assert np.all(np.isfinite(arr))
        ev = np.linalg.eigvalsh(arr.reshape(-1, 6, 6))  # ascending
        top = ev[:, -1:]
        assert np.all(np.abs(ev[:, :3]) < 1e-13 * top)  # rank <= width = 3: exactly singular ...
        assert np.all(ev[:, 3] > 1e-13 * top[:, 0])  # ... and no lower
    e = simulate(X, method="explicit", seed=2, **kw)
    _assert_same_distribution(g, e)


def test_identical_inputs_and_dead_relu():
    X = np.tile([[0.5, -1.0, 2.0]], (3, 1))
    g = simulate(X, depth=4, width=7, activation="relu", C_W=2.0, n_networks=50, seed=0)
    G = g.preact_gram
    np.testing.assert_allclose(G, np.broadcast_to(G[..., :1, :1], G.shape), rtol=1e-13)  # rank 1: all equal
    # a width-1 step network dies (h = 0) with probability 1/2 per layer: zero covariance, no error
    dead = simulate(X, depth=3, width=1, activation="step", C_W=1.0, n_networks=200, seed=0)
    assert np.all(np.isfinite(dead.preact_gram))
    assert np.any(dead.postact_gram[:, 0] == 0.0) and np.any(dead.preact_gram[:, 1] == 0.0)


def test_normalising_a_zero_column_gives_nan_with_a_warning():
    """A width-1 ReLU layer is dead (h = 0) on half the networks; RMSNorm of it is 0/0 -> NaN, not a silent 0."""
    with pytest.warns(SimulationOverflowWarning, match="non-finite statistics.*first at hidden layer 1"):
        r = simulate(np.ones((1, 3)), depth=2, width=1, activation="relu", C_W=2.0, n_networks=40, seed=3,
                     norm="rms_post")
    dead = np.isnan(r.postact_gram[:, 0, 0, 0])
    assert 5 < dead.sum() < 35
    assert np.all(np.isnan(r.preact_gram[dead, 1])) and np.all(np.isnan(r.preact_m4[dead, 1]))  # NaN from there on
    assert np.all(np.isfinite(r.preact_gram[:, 0]))  # computed before the 0/0
    assert np.all(np.isfinite(r.postact_gram[~dead, 0]))
    np.testing.assert_allclose(r.postact_gram[~dead, 0, 0, 0], 1.0)  # RMSNorm: mean square 1


# ------------------------------------------------------------------------------------------
# Reproducibility
# ------------------------------------------------------------------------------------------
def test_independent_of_thread_count_and_batching():
    X = np.random.default_rng(0).normal(size=(3, 4))
    act = activation("tanh")
    args = (X, [9, 5, 7], act, 1.2, 0.1, 40, 123)
    kw = dict(residual=0.4, norm="ln_pre")
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run_gram_cpu(*args, **kw)
    finally:
        numba.set_num_threads(old)
    many = run_gram_cpu(*args, **kw)
    part = run_gram_cpu(X, [9, 5, 7], act, 1.2, 0.1, 15, 123, first_network=25, **kw)
    for k in one:  # compiled vs compiled: every sum has one fixed order whatever the threads and the batch
        assert np.array_equal(one[k], many[k])
        assert np.array_equal(one[k][25:], part[k])
    other_seed = run_gram_cpu(X, [9, 5, 7], act, 1.2, 0.1, 40, 124, **kw)
    assert not np.array_equal(one["preact_gram"], other_seed["preact_gram"])


def test_first_layer_is_the_input_gram_law():
    """Layer 1 rows ~ N(0, C_b + C_W G0): the mean preact Gram equals K^(1) within errors."""
    X = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 1.0]])
    r = simulate(X, depth=1, width=32, activation="relu", C_W=1.7, C_b=0.3, n_networks=3000, seed=9)
    m, se = mean_se(r.preact_gram[:, 0])
    K1 = 0.3 + 1.7 * X @ X.T / 3
    assert np.all(np.abs(m - K1) < 4 * se)
    R, rse = ratio_se(r.preact_m4[:, 0, 0], 3 * r.preact_m2[:, 0, 0] ** 0 * K1[0, 0] ** 2)
    assert abs(R - 1) < 4 * rse  # Gaussian: E z^4 = 3 K^2


@pytest.mark.parametrize("with_m4", [True, False])
def test_gram_sums_are_each_entrys_lane_sum_for_every_P(with_m4):
    """The chain's row-blocked Gram sums (groups of four rows, the last padded; odd group counts paired with
    themselves) give every upper-triangle entry, and with_m4 every fourth moment, exactly as the engines' single
    lane sum (gram_device.lane_sum, the GPU's scalar code) for P = 1..13, and write nothing below the diagonal."""
    from sigprop.kernels.gram_cpu import _gram_sums
    from sigprop.kernels.gram_device import lane_sum
    from sigprop.kernels.simd import aligned_rows

    rng = np.random.default_rng(11)
    for P in range(1, 14):
        for n in (5, 24, 37):
            Z = aligned_rows(P, n)
            Z[:, :n] = rng.standard_normal((P, n))
            G = np.full((P, P), -7.0)
            M4 = np.full(P, -7.0)
            _gram_sums(Z, n, P, G, M4, with_m4)
            for a in range(P):
                for b in range(P):
                    want = lane_sum.py_func(Z, a, Z, b, n, False) if a <= b else -7.0
                    assert G[a, b] == want and math.copysign(1, G[a, b]) == math.copysign(1, want), (P, n, a, b)
                m4 = lane_sum.py_func(Z, a, Z, a, n, True) if with_m4 else -7.0
                assert M4[a] == m4, (P, n, a)
