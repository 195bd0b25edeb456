"""Estimators with standard errors: exact algebraic identities and calibration on synthetic data."""
import itertools

import numpy as np
import pytest

from sigprop.validation.correlator_estimators import (
    gram_four_point,
    gram_moment,
    jackknife,
    pair_index,
    single_input_estimates,
)


def test_jackknife_of_a_mean_is_the_usual_standard_error():
    x = np.random.default_rng(1).normal(size=(500, 3))
    e = jackknife([x], lambda m: m)
    np.testing.assert_allclose(e.value, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(e.se, x.std(0, ddof=1) / np.sqrt(500), rtol=1e-10)


def test_jackknife_bias_correction_is_exact_for_a_quadratic():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=300), rng.normal(1.0, 2.0, size=300)
    e = jackknife([a, b], lambda x, y: x - y**2)
    unbiased = a.mean() - (b.mean() ** 2 - b.var(ddof=1) / 300)
    assert e.value == pytest.approx(unbiased, rel=1e-10)


def test_cross_neuron_formula_is_mean_over_distinct_pairs():
    z = np.random.default_rng(3).normal(size=7)
    n = z.size
    brute = np.mean([z[i] ** 2 * z[j] ** 2 for i, j in itertools.permutations(range(n), 2)])
    m2, m4 = np.mean(z**2), np.mean(z**4)
    assert (n * m2**2 - m4) / (n - 1) == pytest.approx(brute, rel=1e-12)


def _scale_mixture(S, n, P, rng, shape=4.0):
    """Rows i.i.d. N(0, g K) given a per-network g ~ Gamma(shape, 1/shape).

    Then Cov(Sigma_ab, Sigma_cd) = K_ab K_cd / shape."""
    K = np.array([[1.0, 0.4, 0.1], [0.4, 0.8, -0.2], [0.1, -0.2, 1.2]])[:P, :P]
    g = rng.gamma(shape, 1.0 / shape, size=S)
    Z = rng.normal(size=(S, n, P)) @ np.linalg.cholesky(K).T * np.sqrt(g)[:, None, None]
    return Z, K, 1.0 / shape


@pytest.mark.parametrize("form", ["single", "cross", "gram"])
def test_single_input_estimates_are_calibrated(form):
    rng = np.random.default_rng(4)
    S, n = 40_000, 6
    Z, K, varg = _scale_mixture(S, n, 1, rng)
    m2 = (Z[..., 0] ** 2).mean(1)[:, None]
    m4 = (Z[..., 0] ** 4).mean(1)[:, None]
    e = single_input_estimates(m2, m4, n, form)
    G2, G4 = K[0, 0], K[0, 0] ** 2 * (1 + varg)
    assert abs(e.G2.value[0] - G2) < 4 * e.G2.se[0]
    assert abs(e.G4.value[0] - G4) < 4 * e.G4.se[0]
    assert abs(e.kappa4.value[0] - varg * G2**2) < 4 * e.kappa4.se[0]
    assert abs(e.ratio.value[0] - varg) < 4 * e.ratio.se[0]
    assert e.connected.value[0] == pytest.approx(3 * e.kappa4.value[0])
    assert e.V.value[0] == 0.0


def test_gram_moment_six_point():
    rng = np.random.default_rng(5)
    S, n = 40_000, 5
    Z, K, varg = _scale_mixture(S, n, 1, rng)
    m2 = (Z[..., 0] ** 2).mean(1)[:, None]
    e = gram_moment(m2, 3, n)
    shape = 1 / varg
    Eg3 = (shape + 1) * (shape + 2) / shape**2  # E[g^3] for Gamma(shape, 1/shape)
    assert abs(e.value[0] - Eg3 * K[0, 0] ** 3) < 4 * e.se[0]


@pytest.mark.parametrize("P", [2, 3])
def test_gram_four_point_is_calibrated(P):
    rng = np.random.default_rng(6 + P)
    S, n = 40_000, 5
    Z, K, varg = _scale_mixture(S, n, P, rng)
    gram = np.einsum("sia,sib->sab", Z, Z) / n
    kappa, Kest = gram_four_point(gram, n)
    pairs = pair_index(P)
    truth = np.array([[varg * K[a, b] * K[c, d] for (c, d) in pairs] for (a, b) in pairs])
    z = (kappa.value - truth) / kappa.se
    assert np.all(np.abs(z) < 4.5), z
    assert np.all(np.abs((Kest.value - K) / Kest.se) < 4.5)


def test_gram_four_point_fixed_covariance_gives_zero():
    rng = np.random.default_rng(9)
    S, n = 20_000, 4
    K = np.array([[1.0, 0.5], [0.5, 2.0]])
    Z = rng.normal(size=(S, n, 2)) @ np.linalg.cholesky(K).T
    kappa, _ = gram_four_point(np.einsum("sia,sib->sab", Z, Z) / n, n)
    assert np.all(np.abs(kappa.value / kappa.se) < 4.5)


def test_bad_input():
    with pytest.raises(ValueError, match="form"):
        single_input_estimates(np.ones((3, 2)), np.ones((3, 2)), 4, "both")
    with pytest.raises(ValueError, match="width"):
        single_input_estimates(np.ones((3, 2)), np.ones((3, 2)), 1)
    with pytest.raises(ValueError, match="2 independent"):
        jackknife([np.ones(1)], lambda x: x)
    with pytest.raises(ValueError, match="P, P"):
        gram_four_point(np.ones((4, 2, 3)), 8)
