"""Measures of the rainbow model on trained networks: validation/measures/ (similarity.py: CKA of
features, aligned error; spectra.py: weight covariances, effective ranks, Marchenko-Pastur) and
validation/experiments/rainbow_trained.py (alignment to a reference, averaged covariances, resampling, ridge readout).

Tolerances: identities to 1e-12 (relative, rounding of products of order-one matrices); the numerical Marchenko-Pastur
CDF to 1e-6 against adaptive quadrature; statistical tests with fixed seeds: the Wishart edges within the
Tracy-Widom scale (stated per test), the participation ratio of a Wishart sample within 4 standard errors of its
exact expectation (SE measured over 40 draws), the entries of a resampled weight covariance within the Sidak bound
for their count of standard errors.  Hypothesis runs derandomised under the ``ci`` profile (tests/conftest.py).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from _hyp import examples
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.theory.tangent import centered_kernel_alignment
from sigprop.validation import stats
from sigprop.validation.experiments.rainbow_trained import (
    STREAM_RAINBOW_RESAMPLE,
    alignments_to_reference,
    digits_split,
    hidden_features,
    mean_covariances,
    pair_measures,
    resample_network,
    resampled_weights,
    ridge_accuracy,
    train_family,
    white_covariances,
)
from sigprop.validation.measures import (
    aligned_error,
    covariance_spectrum,
    entropy_rank,
    feature_cka,
    marchenko_pastur_cdf,
    marchenko_pastur_density,
    marchenko_pastur_edges,
    marchenko_pastur_ks,
    marchenko_pastur_participation,
    marchenko_pastur_quantiles,
    participation_ratio,
    procrustes,
    top_share,
    weight_covariance,
)


def orthogonal(n: int, rng) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    return Q * np.sign(np.diag(R))


def wishart_spectrum(p: int, n: int, scale: float, seed: int) -> np.ndarray:
    """Eigenvalues of ``W^T W / n``, ``W`` with ``n`` rows ``N(0, scale I_p)``."""
    W = math.sqrt(scale) * np.random.default_rng(seed).standard_normal((n, p))
    return covariance_spectrum(weight_covariance(W))


# --- feature CKA, aligned error, Procrustes invariances ---------------------------------------------------------


@pytest.mark.parametrize("N, na, nb", [(50, 4, 7), (12, 30, 20)])  # the feature form and the kernel form
def test_feature_cka_is_the_cka_of_the_kernels(N, na, nb):
    rng = np.random.default_rng(N)
    Fa, Fb = rng.standard_normal((N, na)), rng.standard_normal((N, nb)) + 0.5
    ref = centered_kernel_alignment(Fa @ Fa.T, Fb @ Fb.T)
    assert feature_cka(Fa, Fb) == pytest.approx(ref, rel=1e-12)
    assert 0.0 <= feature_cka(Fa, Fb) <= 1.0


@settings(max_examples=examples(40), deadline=None)
@given(seed=st.integers(0, 2 ** 31), n=st.integers(2, 9), N=st.integers(3, 15), scale=st.floats(0.01, 100.0))
def test_feature_cka_invariances(seed, n, N, scale):
    rng = np.random.default_rng(seed)
    Fa, Fb = rng.standard_normal((N, n)), rng.standard_normal((N, n))
    Q = orthogonal(n, rng)
    shift = rng.standard_normal(n)
    base = feature_cka(Fa, Fb)
    assert feature_cka(scale * Fa @ Q + shift, Fb) == pytest.approx(base, rel=1e-9, abs=1e-12)
    assert feature_cka(Fb, Fa) == pytest.approx(base, rel=1e-12, abs=1e-15)
    assert feature_cka(Fa, Fa @ Q) == pytest.approx(1.0, rel=1e-10)


@settings(max_examples=examples(40), deadline=None)
@given(seed=st.integers(0, 2 ** 31), n=st.integers(1, 8), extra=st.integers(0, 10))
def test_procrustes_invariances(seed, n, extra):
    """Rotating both networks' neurons by the same Q conjugates A and keeps the error; rotating F_a by Q alone
    composes A with Q^T; the aligned error never exceeds the raw one; aligned_error with the fitted A is the
    fit's error."""
    rng = np.random.default_rng(seed)
    N = n + extra + 1
    Fa, Fb = rng.standard_normal((N, n)), rng.standard_normal((N, n))
    Q = orthogonal(n, rng)
    al = procrustes(Fa, Fb)
    both = procrustes(Fa @ Q, Fb @ Q)
    assert both.relative_error == pytest.approx(al.relative_error, rel=1e-9, abs=1e-12)
    assert al.relative_error <= al.raw_error + 1e-12
    assert aligned_error(Fa, Fb, al.rotation) == pytest.approx(al.relative_error, rel=1e-12, abs=1e-14)
    if N > n:  # full-rank cross-covariance (almost surely): A is unique
        np.testing.assert_allclose(both.rotation, Q.T @ al.rotation @ Q, atol=1e-9)
        np.testing.assert_allclose(procrustes(Fa @ Q, Fb).rotation, Q.T @ al.rotation, atol=1e-9)
        np.testing.assert_allclose(al.rotation, scipy.linalg.orthogonal_procrustes(Fa, Fb)[0], atol=1e-9)


def test_aligned_error_evaluates_a_rotation_fitted_elsewhere():
    rng = np.random.default_rng(3)
    F = rng.standard_normal((60, 8))
    Q = orthogonal(8, rng)
    noise = 0.1 * rng.standard_normal(F.shape)
    A = procrustes(F[:30] @ Q + noise[:30], F[:30]).rotation
    held = aligned_error(F[30:] @ Q + noise[30:], F[30:], A)
    assert 0.05 < held < 0.3  # the noise level, not the (smaller) in-sample error of an overfitted rotation
    with pytest.raises(InputError, match="orthogonal"):
        aligned_error(F, F, 1.1 * np.eye(8))
    with pytest.raises(InputError, match=r"\(8, 8\)"):
        aligned_error(F, F, np.eye(7))


def test_cka_and_alignment_errors():
    F = np.ones((5, 3))
    with pytest.raises(InputError, match="zero centred kernel"):
        feature_cka(F, np.arange(15.0).reshape(5, 3))
    with pytest.raises(InputError, match="same number of samples"):
        feature_cka(np.eye(3), np.eye(4))
    with pytest.raises(InputError, match="at least 2 samples"):
        feature_cka(np.ones((1, 2)), np.ones((1, 2)))
    with pytest.raises(InputError, match="non-finite|finite"):
        feature_cka(np.array([[1.0, np.nan], [0.0, 1.0]]), np.eye(2))
    with pytest.raises(InputError, match="same number of neurons"):
        aligned_error(np.ones((3, 2)), np.ones((3, 3)), np.eye(2))


# --- weight covariances and spectra ---------------------------------------------------------------------------


def test_weight_covariance_in_an_aligned_basis():
    """z = h W^T = (h A)(W A)^T, so the aligned covariance is A^T C A, with the same spectrum."""
    rng = np.random.default_rng(4)
    W, h = rng.standard_normal((7, 5)), rng.standard_normal((9, 5))
    A = orthogonal(5, rng)
    C = weight_covariance(W)
    np.testing.assert_allclose(C, W.T @ W / 7, rtol=1e-13)
    CA = weight_covariance(W, A)
    np.testing.assert_allclose(CA, A.T @ C @ A, atol=1e-13)
    np.testing.assert_allclose((h @ A) @ (W @ A).T, h @ W.T, atol=1e-12)
    np.testing.assert_allclose(covariance_spectrum(CA), covariance_spectrum(C), rtol=1e-10, atol=1e-13)
    assert np.array_equal(CA, CA.T)
    with pytest.raises(InputError, match="orthogonal"):
        weight_covariance(W, 2.0 * np.eye(5))


def test_covariance_spectrum_refuses_asymmetric_and_indefinite():
    lam = covariance_spectrum(np.array([[2.0, 1.0], [1.0, 2.0]]))
    np.testing.assert_allclose(lam, [3.0, 1.0], rtol=1e-14)
    with pytest.raises(InputError, match="symmetric"):
        covariance_spectrum(np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(InputError, match="most negative eigenvalue -1"):
        covariance_spectrum(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(InputError, match="square"):
        covariance_spectrum(np.ones((2, 3)))


@pytest.mark.parametrize("r, p", [(1, 5), (3, 3), (4, 10)])
def test_effective_ranks_of_flat_spectra(r, p):
    lam = np.r_[np.full(r, 2.5), np.zeros(p - r)]
    assert participation_ratio(lam) == pytest.approx(r, rel=1e-14)
    assert entropy_rank(lam) == pytest.approx(r, rel=1e-14)
    assert top_share(lam, r) == pytest.approx(1.0, rel=1e-14)


def test_effective_ranks_of_a_geometric_spectrum():
    """lambda_i = q^i, i >= 0 (infinitely many): PR = (1+q)/(1-q); the entropy rank has a closed form too."""
    q = 0.8
    lam = q ** np.arange(400)
    assert participation_ratio(lam) == pytest.approx((1 + q) / (1 - q), rel=1e-12)
    p = (1 - q) * lam
    H = -math.log(1 - q) - q * math.log(q) / (1 - q)
    assert entropy_rank(lam) == pytest.approx(math.exp(H), rel=1e-10)
    assert top_share(lam, 10) == pytest.approx(1 - q ** 10, rel=1e-12)
    assert p.sum() == pytest.approx(1.0)


@settings(max_examples=examples(50), deadline=None)
@given(lam=st.lists(st.floats(0.0, 1e3), min_size=1, max_size=12).filter(lambda v: sum(v) > 1e-3),
       scale=st.floats(1e-3, 1e3))
def test_effective_rank_bounds(lam, scale):
    """1 <= PR <= entropy rank <= p (Renyi entropies decrease with the order); both scale-invariant;
    top shares increase in k from >= k/p to 1."""
    lam = np.asarray(lam)
    p = lam.size
    pr, er = participation_ratio(lam), entropy_rank(lam)
    assert 1.0 - 1e-12 <= pr <= er * (1 + 1e-9) and er <= p * (1 + 1e-12)
    assert participation_ratio(scale * lam) == pytest.approx(pr, rel=1e-9)
    assert entropy_rank(scale * lam) == pytest.approx(er, rel=1e-9)
    shares = [top_share(lam, k) for k in range(1, p + 1)]
    assert all(b >= a - 1e-12 for a, b in zip(shares, shares[1:]))
    assert all(s >= (k + 1) / p - 1e-12 for k, s in enumerate(shares)) and shares[-1] == pytest.approx(1.0)


def test_rank_errors():
    with pytest.raises(InputError, match=">= 0"):
        participation_ratio([1.0, -0.5])
    with pytest.raises(InputError, match="all zero"):
        entropy_rank([0.0, 0.0])
    with pytest.raises(InputError, match=r"in \[1, 3\]"):
        top_share([1.0, 2.0, 3.0], 4)
    with pytest.raises(InputTypeError, match="integer"):
        top_share([1.0, 2.0], 1.5)


# --- Marchenko-Pastur -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("y, s", [(0.25, 1.0), (1.0, 0.5), (0.05, 2.0), (2.5, 0.7)])
def test_marchenko_pastur_density_mass_and_moments(y, s):
    """The continuous part has mass min(1, 1/y), first moment s (the atom at 0 adds nothing) and second s^2 (1+y)."""
    a, b = marchenko_pastur_edges(y, s)
    f = lambda x: float(marchenko_pastur_density(x, y, s))  # noqa: E731
    mass = quad(f, a, b, limit=200)[0]
    m1 = quad(lambda x: x * f(x), a, b, limit=200)[0]
    m2 = quad(lambda x: x * x * f(x), a, b, limit=200)[0]
    assert mass == pytest.approx(min(1.0, 1.0 / y), rel=1e-6)
    assert m1 == pytest.approx(s, rel=1e-6)
    assert m2 == pytest.approx(s * s * (1 + y), rel=1e-6)
    assert float(marchenko_pastur_density(b * 1.01, y, s)) == 0.0


@pytest.mark.parametrize("y, s", [(0.25, 1.0), (1.0, 0.5), (0.01, 1.0), (2.5, 0.7)])
def test_marchenko_pastur_cdf_against_quadrature(y, s):
    a, b = marchenko_pastur_edges(y, s)
    atom = max(0.0, 1.0 - 1.0 / y)
    xs = np.linspace(a, b, 9)[1:-1]
    ref = [atom + quad(lambda t: float(marchenko_pastur_density(t, y, s)), a, x, limit=200)[0] for x in xs]
    np.testing.assert_allclose(marchenko_pastur_cdf(xs, y, s), ref, atol=1e-6)
    F = marchenko_pastur_cdf([-1e-9, 0.0, b, 2 * b], y, s)
    np.testing.assert_allclose(F, [0.0, atom, 1.0, 1.0], atol=1e-12)


def test_marchenko_pastur_edges_and_quantiles_match_a_large_wishart():
    """p = 500, n = 2000 (y = 1/4), sigma^2 = 0.5: the extreme eigenvalues sit at the edges up to the Tracy-Widom
    scale (~ n^(-2/3), here < 1% of the edge; tolerance 3%), the sorted spectrum follows the classical locations
    (max deviation 3% of the upper edge), the KS distance is of order 1/p (< 0.02) and the participation ratio
    is p / (1 + y) to 2%."""
    p, n, s = 500, 2000, 0.5
    y = p / n
    lam = wishart_spectrum(p, n, s, seed=5)
    a, b = marchenko_pastur_edges(y, s)
    assert lam[0] == pytest.approx(b, rel=0.03) and lam[-1] == pytest.approx(a, rel=0.03)
    q = marchenko_pastur_quantiles(p, y, s)
    assert np.max(np.abs(q - lam)) < 0.03 * b
    assert marchenko_pastur_ks(lam, y, s) < 0.02
    assert participation_ratio(lam) == pytest.approx(marchenko_pastur_participation(p, y), rel=0.02)


def test_marchenko_pastur_quantiles_with_an_atom():
    """y = 2 (more inputs than rows): half the spectrum is the atom at 0, in the estimate and in the quantiles."""
    p, n = 400, 200
    lam = wishart_spectrum(p, n, 1.0, seed=6)
    q = marchenko_pastur_quantiles(p, 2.0)
    assert np.count_nonzero(q == 0.0) == p // 2
    assert np.count_nonzero(lam) == n  # the rest are rounding, returned as exact zeros
    assert marchenko_pastur_ks(lam, 2.0) < 0.02
    assert np.all(np.diff(q) <= 0)


def test_participation_ratio_of_white_estimates_within_its_se():
    """40 Wishart draws (p = 64, n = 128): the mean participation ratio against p n / (n + p + 1) (ratio of the
    exact expectations; the expectation of the ratio differs by O(1/p^2), below the SE here), within 4 SE."""
    p, n = 64, 128
    prs = np.array([participation_ratio(wishart_spectrum(p, n, 1.0, seed=100 + k)) for k in range(40)])
    m, se = stats.mean_se(prs)
    assert abs(m - p * n / (n + p + 1)) < 4 * se
    assert marchenko_pastur_participation(p, p / n) == pytest.approx(p / 1.5)


def test_spiked_spectrum_is_far_from_marchenko_pastur():
    lam = wishart_spectrum(200, 400, 1.0, seed=7)
    lam[:5] += 50.0
    assert marchenko_pastur_ks(lam, 0.5) < 0.05  # five spikes move the CDF by 5 / 200 only...
    assert top_share(lam, 5) > 0.5 > top_share(marchenko_pastur_quantiles(200, 0.5), 5)  # ...but dominate the trace
    assert participation_ratio(lam) < 0.15 * marchenko_pastur_participation(200, 0.5)


def test_marchenko_pastur_errors():
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(InputError, match="ratio"):
            marchenko_pastur_edges(bad)
    with pytest.raises(InputError, match="scale"):
        marchenko_pastur_density([1.0], 1.0, 0.0)
    with pytest.raises(InputTypeError, match="ratio"):
        marchenko_pastur_cdf([1.0], "1")
    with pytest.raises(InputError, match="p must be"):
        marchenko_pastur_quantiles(0, 1.0)
    with pytest.raises(InputError, match="finite"):
        marchenko_pastur_cdf([np.inf], 1.0)


# --- trained networks: alignment, covariances, resampling, readout -------------------------------------------


def _permuted_twin(net, rng):
    """The same function with hidden layer 1's neurons permuted (rows of W_1, columns of W_2)."""
    twin = net.copy()
    P = rng.permutation(net.widths[1])
    twin.W[0][:] = net.W[0][P]
    twin.W[1][:] = net.W[1][:, P]
    return twin, P


def test_alignment_and_covariance_of_a_permuted_twin():
    """A network and its twin with permuted neurons: CKA 1, aligned error 0, raw error large; the alignment is the
    permutation and the averaged covariance of layer 2 equals the network's own."""
    from sigprop.kernels.learning.training import init_mlp

    rng = np.random.default_rng(8)
    net = init_mlp(64, 10, depth=2, width=24, seed=1)
    twin, P = _permuted_twin(net, rng)
    sp = digits_split(80, 40, seed=1)
    fit = [hidden_features(m, sp.X_train) for m in (net, twin)]
    ev = [hidden_features(m, sp.X_test) for m in (net, twin)]
    pm = pair_measures(fit, ev)
    np.testing.assert_allclose(pm.cka, 1.0, rtol=1e-10)
    assert np.max(pm.aligned) < 1e-10 and np.min(pm.raw[:, 0]) > 0.5
    A = alignments_to_reference(fit)
    np.testing.assert_allclose(A[1][0], np.eye(24)[P], atol=1e-9)  # h_twin = h_net[:, P], A[i, P[i]] = 1
    covs = mean_covariances([net, twin], A)
    np.testing.assert_allclose(covs[1], weight_covariance(net.weight(1)), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(covs[0], weight_covariance(net.weight(0)), rtol=1e-12)


def test_resampled_weights_have_the_covariance_asked_for():
    """Rows of W = G C^(1/2): the entries of W^T W / n (n = 4000 rows) against C, each within the Sidak bound for
    the 15 upper-triangle entries, with SE sqrt((C_aa C_bb + C_ab^2) / n) (Wishart)."""
    rng = np.random.default_rng(9)
    B = rng.standard_normal((5, 5))
    C = B @ B.T / 5 + 0.1 * np.eye(5)
    n = 4000
    W = resampled_weights(C, seed=11, network=0, layer=1, rows=n)
    Chat = W.T @ W / n
    iu = np.triu_indices(5)
    se = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C ** 2) / n)[iu]
    z = (Chat[iu] - C[iu]) / se
    assert np.max(np.abs(z)) < stats.z_bound(len(z))
    G = resampled_weights(1.0, seed=11, network=0, layer=1, rows=n, cols=5)
    np.testing.assert_allclose(W, G @ scipy.linalg.sqrtm(C).real, atol=1e-10)


def test_resampling_stream_is_free_and_reproducible():
    import importlib
    import pkgutil

    import sigprop.kernels

    used = {}
    for info in pkgutil.iter_modules(sigprop.kernels.__path__):
        if info.name.startswith(("explicit_cuda", "gram_cuda", "ptx")):
            continue  # CUDA-only modules: their streams are those of rng (tested there)
        mod = importlib.import_module(f"sigprop.kernels.{info.name}")
        used.update({k: v for k, v in vars(mod).items() if k.startswith("STREAM_") and isinstance(v, int)})
    assert STREAM_RAINBOW_RESAMPLE not in used.values(), used
    a = resampled_weights(2.0, seed=3, network=1, layer=2, rows=6, cols=4)
    np.testing.assert_array_equal(a, resampled_weights(2.0, seed=3, network=1, layer=2, rows=6, cols=4))
    assert not np.allclose(a, resampled_weights(2.0, seed=3, network=2, layer=2, rows=6, cols=4))


def test_resample_network_scalar_and_matrix_covariances_agree():
    sp = digits_split(50, 30, seed=2)
    from sigprop.kernels.learning.training import init_mlp

    ref = hidden_features(init_mlp(64, 10, depth=2, width=16, seed=0), sp.X_train)
    ref_eval = hidden_features(init_mlp(64, 10, depth=2, width=16, seed=0), sp.X_test)
    white = white_covariances([64, 16, 16])
    a = resample_network(white, ref, sp.X_train, sp.X_test, seed=4, network=3, ref_eval=ref_eval)
    b = resample_network([c * np.eye(n) for c, n in zip(white, (64, 16))], ref, sp.X_train, sp.X_test, seed=4,
                         network=3)
    np.testing.assert_allclose(a.eval, b.eval, rtol=1e-10, atol=1e-12)
    assert all(0 < e < 2 for e in a.aligned_errors) and all(math.isnan(e) for e in b.aligned_errors)
    with pytest.raises(InputError, match="one covariance per reference layer"):
        resample_network(white[:1], ref, sp.X_train, sp.X_test, seed=4, network=3)
    with pytest.raises(InputError, match="positive semi-definite"):
        resample_network([-np.eye(64), 1.0], ref, sp.X_train, sp.X_test, seed=4, network=3)


def test_ridge_accuracy_is_scale_and_rotation_invariant_and_matches_sklearn():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(10)
    y = rng.integers(0, 4, 120)
    F = np.eye(4)[y] @ rng.standard_normal((4, 12)) + 0.8 * rng.standard_normal((120, 12))
    acc = ridge_accuracy(F[:80], y[:80], F[80:], y[80:], 0.1, classes=4)
    Q = orthogonal(12, rng)
    assert ridge_accuracy(7.0 * F[:80] @ Q, y[:80], 7.0 * F[80:] @ Q, y[80:], 0.1, classes=4) == acc
    Fc = F[:80] - F[:80].mean(axis=0)
    alpha = 0.1 * np.sum(Fc ** 2) / 80
    pred = Ridge(alpha=alpha).fit(F[:80], np.eye(4)[y[:80]]).predict(F[80:]).argmax(axis=1)
    assert acc == np.mean(pred == y[80:]) and 0.5 < acc <= 1.0
    with pytest.raises(InputError, match="labels"):
        ridge_accuracy(F[:80], y[:80] + 4, F[80:], y[80:], 0.1, classes=4)
    with pytest.raises(InputError, match="ridge"):
        ridge_accuracy(F[:80], y[:80], F[80:], y[80:], 0.0, classes=4)


def test_train_family_is_reproducible_and_learns():
    sp = digits_split(200, 100, seed=3)
    kw = dict(init_seeds=[1, 2], sgd_seeds=[5, 6], epochs=3, lr=0.05, weight_decay=1e-3)
    f1, f2 = train_family(sp, 32, 2, **kw), train_family(sp, 32, 2, **kw)
    np.testing.assert_array_equal(f1.trained[0].W[1], f2.trained[0].W[1])
    assert np.all(f1.test_accuracy > 0.5) and not np.array_equal(f1.initial[0].W[0], f1.trained[0].W[0])
    with pytest.raises(InputError, match="same length"):
        train_family(sp, 32, 2, init_seeds=[1], sgd_seeds=[1, 2], epochs=1, lr=0.1)
    with pytest.raises(InputError, match="1797"):
        digits_split(1500, 400)
