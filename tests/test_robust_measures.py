"""The measures at extreme magnitudes, RFM's BLAS threads and the measures' docstrings.

Scale-invariant measures (NFA correlation, isotropy, CKA, Procrustes, effective ranks) must give the numbers of
ordinary magnitudes at any finite magnitude; the others (AGOP, chain rule, powers, weight covariances) must raise an
InputError naming the argument when the result itself is beyond float64, instead of returning inf.  At ordinary
magnitudes the values are those of the plain formulas (bit for bit where the scaling is exact).
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from sigprop.kernels.learning import rfm as rfm_module
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.validation import measures
from sigprop.validation.measures import (
    agop,
    aligned_error,
    chain_rule_agop,
    entropy_rank,
    feature_cka,
    frame_isotropy,
    nfa,
    nfa_correlation,
    nfa_isotropy_relation,
    participation_ratio,
    procrustes,
    psd_power,
    range_basis,
    reference,
    similarity,
    spectra,
    top_share,
    weight_covariance,
)


@pytest.fixture
def W():
    return np.random.default_rng(0).standard_normal((3, 4))


@pytest.fixture
def F():
    return np.random.default_rng(1).standard_normal((10, 3))


# --- AGOP and the other scale-dependent measures: exact scaling, overflow is an error -------------------------


def test_agop_overflow_raises_naming_J():
    with pytest.raises(InputError, match=r"agop: the AGOP of J overflows float64.*max\|J\| = 1e\+200.*rescale J"):
        agop(np.full((2, 1, 2), 1e200))
    for kw in ({"per_output": True}, {"centered": True}):
        J = np.array([[[1e200, 0.0]], [[-1e200, 0.0]]])
        with pytest.raises(InputError, match="overflows"):
            agop(J, **kw)


def test_agop_finite_result_whose_partial_sums_overflow():
    # four squares of 1e154 sum to 4e308 (inf) before the division by N = 4; the mean, 1e308, is finite
    J = np.full((4, 1, 2), 1e154)
    assert np.array_equal(agop(J), np.full((2, 2), 1e154 * 1e154))
    assert np.array_equal(agop(J, per_output=True), np.full((1, 2, 2), 1e154 * 1e154))
    assert np.all(agop(J, centered=True) == 0.0)


def test_agop_is_unchanged_at_ordinary_scales():
    J = np.random.default_rng(2).standard_normal((50, 3, 4)) * 7.3
    A = J.reshape(150, 4)
    assert np.array_equal(agop(J), (A.T @ A) / 50)
    Jc = J - J.mean(axis=0, keepdims=True)
    Ac = Jc.reshape(150, 4)
    assert np.array_equal(agop(J, centered=True), (Ac.T @ Ac) / 50)


def test_chain_rule_agop_overflow_raises_and_huge_factors_that_cancel_are_exact(W):
    with pytest.raises(InputError, match=r"chain_rule_agop: W\^T G W overflows float64.*rescale W or G"):
        chain_rule_agop(1e200 * W, np.eye(3))
    G = np.diag([1.0, 2.0, 3.0])
    # W^T G W with W ~ 2^600 and G ~ 2^-1000 is ~2^200: the product W^T G overflows nowhere in the scaled form
    got = chain_rule_agop(2.0 ** 600 * W, 2.0 ** -1000 * G)
    assert np.array_equal(got, 2.0 ** 200 * (W.T @ G @ W))
    assert np.array_equal(chain_rule_agop(W, G), W.T @ G @ W)


def test_psd_power_overflow_raises_naming_M():
    with pytest.raises(InputError, match=r"psd_power: M\^alpha overflows float64.*alpha = 400"):
        psd_power(10.0 * np.eye(2), 400)
    with pytest.raises(InputError, match="overflows"):
        psd_power(np.diag([1e200, 1.0]), 2.0)
    assert np.allclose(psd_power(np.diag([1e200, 1.0]), 0.5), np.diag([1e100, 1.0]), rtol=1e-15)


def test_symmetry_check_does_not_overflow():
    # an asymmetric matrix at 1e308: the norm of M - M^T overflowed, so the check passed
    M = np.array([[1.0, 1e308], [-1e308, 1.0]])
    with pytest.raises(InputError, match="symmetric"):
        psd_power(M, 0.5)


def test_weight_covariance_overflow_raises_naming_W():
    with pytest.raises(InputError, match=r"weight_covariance: the covariance.*overflows.*rescale W"):
        weight_covariance(np.full((2, 2), 1e200))
    W = np.random.default_rng(3).standard_normal((5, 3))
    C = W.T @ W / 5
    assert np.array_equal(weight_covariance(W), 0.5 * (C + C.T))
    assert np.array_equal(weight_covariance(2.0 ** 500 * W), 2.0 ** 1000 * weight_covariance(W))


# --- scale-invariant measures: the ordinary number at any finite magnitude ------------------------------------


def test_nfa_correlation_huge_M_and_huge_W(W):
    M = W.T @ W
    assert nfa_correlation(W, 1e300 * M) == pytest.approx(1.0, abs=1e-15)
    assert nfa_correlation(1e200 * W, M) == pytest.approx(1.0, abs=1e-15)
    assert nfa_correlation(1e-200 * W, 1e-300 * M) == pytest.approx(1.0, abs=1e-15)
    for measure in ("cosine", "pearson"):
        want = nfa_correlation(W, M + np.eye(4), measure=measure)
        assert nfa_correlation(2.0 ** 900 * W, 2.0 ** 1000 * (M + np.eye(4)), measure=measure) == want


def test_nfa_correlation_large_alpha_is_the_top_eigenvector_limit(W):
    M = W.T @ W
    lam = np.linalg.eigvalsh(M)
    want = lam.max() / np.linalg.norm(lam)  # M^400 ~ v v^T: cos(W^T W, v v^T) = lam_max / |lam|
    assert nfa_correlation(W, 10.0 * M, alpha=400) == pytest.approx(want, rel=1e-12)
    assert nfa_correlation(1e200 * W, 10.0 * M, alpha=400) == pytest.approx(want, rel=1e-12)
    assert nfa_correlation(W, 1e-300 * M, alpha=3.5) == pytest.approx(nfa_correlation(W, M, alpha=3.5), rel=1e-14)


def test_nfa_correlation_with_W0_at_extreme_scales(W):
    rng = np.random.default_rng(4)
    W0, M = rng.standard_normal(W.shape), rng.standard_normal((4, 4))
    M = M @ M.T
    want = nfa_correlation(W, M, W0=W0)
    assert nfa_correlation(2.0 ** 1000 * W, M, W0=-2.0 ** 1000 * W0) == nfa_correlation(W, M, W0=-W0)
    assert nfa_correlation(2.0 ** 1000 * W, 2.0 ** -1000 * M, W0=2.0 ** 1000 * W0) == want
    # tiny W - W0: its Gram matrix underflowed to 0 ("undefined") in the unscaled form
    assert nfa_correlation(1e-170 * W, M, W0=1e-170 * W0) == pytest.approx(want, rel=1e-12)


def test_nfa_correlation_ordinary_values_equal_the_plain_formula(W):
    M = W.T @ np.diag([1.0, 2.0, 3.0]) @ W
    a, b = (W.T @ W).ravel(), M.ravel()
    assert nfa_correlation(W, M) == float(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1))
    lam, V = np.linalg.eigh(M)
    Mh = (V * np.where(lam < 0, 0.0, lam) ** 0.5) @ V.T
    bh = Mh.ravel()
    plain = a @ bh / (np.linalg.norm(a) * np.linalg.norm(bh))
    assert nfa_correlation(W, M, alpha=0.5) == pytest.approx(plain, rel=1e-15)


def test_frame_isotropy_at_extreme_scales():
    assert frame_isotropy(1e300 * np.eye(3)) == 1.0
    assert frame_isotropy(1e-300 * np.eye(3)) == 1.0
    G = np.diag([1.0, 2.0, 5.0])
    assert frame_isotropy(2.0 ** 1020 * G) == frame_isotropy(G)
    Q = np.eye(3)[:, :2]
    assert frame_isotropy(2.0 ** 1020 * G, subspace=Q) == frame_isotropy(G, subspace=Q)
    with pytest.raises(InputError, match=r"smallest -1e\+300"):  # reported in G's own units
        frame_isotropy(np.diag([1e300, -1e300]))


def test_nfa_isotropy_relation_at_extreme_scales(W):
    rel = nfa_isotropy_relation(1e200 * np.eye(3), np.eye(3))
    assert (rel.cosine, rel.isotropy, rel.rank, rel.condition) == (1.0, 1.0, 3, 1.0)
    assert (rel.rho_forward, rel.rho_reverse, rel.cosine_lower, rel.cosine_upper) == (1.0, 1.0, 1.0, 1.0)
    G = np.diag([1.0, 2.0, 3.0])
    assert nfa_isotropy_relation(2.0 ** 1000 * W, 2.0 ** -1000 * G) == nfa_isotropy_relation(W, G)
    assert range_basis(1e300 * W).shape == range_basis(W).shape


def test_feature_cka_at_extreme_scales(F):
    assert feature_cka(1e200 * F, 1e200 * F) == pytest.approx(1.0, abs=1e-15)
    G = np.random.default_rng(5).standard_normal((10, 4))
    want = feature_cka(F, G)
    assert feature_cka(2.0 ** 1000 * F, 2.0 ** -1000 * G) == want
    wide = np.random.default_rng(6).standard_normal((10, 30))  # the N x N kernel form
    assert feature_cka(2.0 ** 1000 * F, wide) == feature_cka(F, wide)
    # tiny features: their centred Gram matrix underflowed to "zero" before
    assert feature_cka(1e-170 * F, G) == pytest.approx(want, rel=1e-12)


def test_effective_ranks_at_extreme_scales():
    assert participation_ratio([1e160, 1e160]) == 2.0
    assert participation_ratio([1e308, 1e308, 0.0]) == 2.0
    assert entropy_rank([1e308, 1e308]) == pytest.approx(2.0, rel=1e-15)
    assert top_share([1e308, 1e308], 1) == 0.5
    assert participation_ratio([1e-200, 1e-200]) == 2.0
    lam = np.array([3.0, 1.0, 0.5])
    assert participation_ratio(lam) == float(lam.sum() ** 2 / np.sum(lam ** 2))
    assert participation_ratio(2.0 ** 1000 * lam) == participation_ratio(lam)


def test_procrustes_at_1e160(F):
    Q, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((3, 3)))
    want = procrustes(F @ Q, F)
    got = procrustes(1e160 * (F @ Q), 1e160 * F)  # "SVD did not converge" before
    assert np.allclose(got.rotation, Q.T, atol=1e-12)
    assert got.relative_error < 1e-14
    big = procrustes(2.0 ** 600 * (F @ Q), 2.0 ** 600 * F)
    assert np.array_equal(big.rotation, want.rotation)
    assert (big.relative_error, big.raw_error) == (want.relative_error, want.raw_error)
    assert aligned_error(1e200 * (F @ Q), 1e200 * F, want.rotation) < 1e-14


# --- rfm: blas_threads -----------------------------------------------------------------------------------------


def _blas_threads_now() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]


def test_rfm_blas_threads_one_gives_identical_results_whatever_the_default(monkeypatch):
    X = np.random.default_rng(8).standard_normal((120, 6))
    y = X[:, 0] * X[:, 1]
    seen = []
    solve = rfm_module._ridge_solve

    def spy(*args):
        seen.append(_blas_threads_now())
        return solve(*args)

    monkeypatch.setattr(rfm_module, "_ridge_solve", spy)
    fits = []
    for outer in (1, 2, 4):
        with threadpool_limits(outer, user_api="blas"):
            fits.append(rfm_module.rfm(X, y, iters=2, blas_threads=1))
    assert all(t == 1 for threads in seen for t in threads) and len(seen) == 9
    for f in fits[1:]:
        assert np.array_equal(f.M, fits[0].M) and np.array_equal(f.alpha, fits[0].alpha)
        assert np.array_equal(f.train_mse, fits[0].train_mse)


def test_rfm_blas_threads_is_checked_before_work():
    X = np.zeros((3, 2))
    X[1, 0] = X[2, 1] = 1.0
    for bad, err in ((0, InputError), (-2, InputError), (1.5, InputTypeError), (True, InputTypeError)):
        with pytest.raises(err, match="blas_threads"):
            rfm_module.rfm(X, np.arange(3.0), iters=1, blas_threads=bad)
    assert "blas_threads" in inspect.signature(rfm_module.rfm).parameters
    assert inspect.signature(rfm_module.rfm).parameters["blas_threads"].default is None


# --- docstrings say what the code does ---------------------------------------------------------------------------


def test_nfa_correlation_docstring_does_not_claim_to_reproduce_verify_deep_nfa():
    doc = " ".join(nfa_correlation.__doc__.split())
    assert "to reproduce verify_deep_NFA.py's number" not in doc
    assert "does *not* reproduce that file's number" in doc
    assert "in place" in doc and "layer_idx >= 2" in doc


def test_rfm_docstring_states_the_reference_self_term_threshold():
    doc = " ".join(rfm_module.__doc__.split())
    assert "The reference code drops the same terms" not in doc
    assert "below ``1e-10``" in doc and "float32" in doc


@pytest.mark.parametrize("module", [measures, nfa, spectra, similarity, reference, rfm_module])
def test_no_reference_to_a_theory_file(module):
    assert "THEORY.md" not in inspect.getsource(module)
