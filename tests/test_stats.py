"""Estimators and acceptance rules of sigprop.validation.stats: exact identities and calibration."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sst

from _hyp import examples
from sigprop.validation import stats


def test_mean_se_matches_definition():
    x = np.random.default_rng(0).normal(size=(50, 3))
    m, se = stats.mean_se(x)
    np.testing.assert_allclose(m, x.mean(0))
    np.testing.assert_allclose(se, x.std(0, ddof=1) / math.sqrt(50))
    m1, se1 = stats.mean_se(x[:, 0])
    assert isinstance(m1, float) and isinstance(se1, float)
    m2, _ = stats.mean_se(x.T, axis=1)
    np.testing.assert_allclose(m2, m)


@pytest.mark.parametrize("bad", [1.0, [1.0]])
def test_mean_se_rejects_too_few_replicates(bad):
    with pytest.raises(ValueError, match="replicate"):
        stats.mean_se(bad)


def test_z_bound_sidak_identity_and_values():
    assert stats.z_bound(1) == pytest.approx(sst.norm.isf(0.005))
    for m in (1, 7, 100, 5000):
        z = stats.z_bound(m, 0.99)
        per_check = 1 - 2 * sst.norm.sf(z)
        assert per_check**m == pytest.approx(0.99, rel=1e-10)
    # monotone in the number of checks and in the family level
    assert stats.z_bound(10) < stats.z_bound(100) < stats.z_bound(1000)
    assert stats.z_bound(50, 0.9) < stats.z_bound(50, 0.999)
    assert stats.z_bound(0) == stats.z_bound(1)


@pytest.mark.parametrize("kw", [dict(n_checks=-1), dict(n_checks=2.5), dict(n_checks=3, family_level=1.0),
                                dict(n_checks=3, family_level=0.0)])
def test_z_bound_rejects_bad_input(kw):
    with pytest.raises(ValueError):
        stats.z_bound(**kw)


def test_sidak_family_coverage_by_simulation():
    """With the Sidak bound, m independent N(0,1) z-scores all pass in ~99% of runs (binomial SE ~0.3%)."""
    rng = np.random.default_rng(1)
    m, runs = 40, 20000
    zmax = stats.z_bound(m, 0.99)
    all_pass = (np.abs(rng.standard_normal((runs, m))) <= zmax).all(axis=1).mean()
    assert abs(all_pass - 0.99) < 4 * math.sqrt(0.99 * 0.01 / runs)


def test_var_se_calibrated():
    """Sample variances of Exp(1) samples (heavy-ish tails): SE from mu_4 matches their spread."""
    rng = np.random.default_rng(2)
    S, reps = 400, 2000
    x = rng.exponential(size=(reps, S))
    v = x.var(axis=1, ddof=1)
    ses = stats.var_se(x, axis=1)[1]
    # true Var(s^2) ~ (mu4 - sigma^4)/S = (9 - 1)/S for Exp(1)
    assert ses.mean() == pytest.approx(math.sqrt(8 / S), rel=0.1)
    assert v.std() == pytest.approx(math.sqrt(8 / S), rel=0.1)
    np.testing.assert_allclose(stats.var_se(x[:3].T)[0], x[:3].var(axis=1, ddof=1))


def test_ratio_se_delta_method_calibrated():
    rng = np.random.default_rng(3)
    S, reps = 300, 2000
    b = 2.0 + rng.normal(size=(reps, S))
    a = 0.5 * b + rng.normal(scale=0.7, size=(reps, S))
    R = a.mean(1) / b.mean(1)
    ses = np.array([stats.ratio_se(a[i], b[i])[1] for i in range(200)])
    assert R.mean() == pytest.approx(0.5, abs=4 * R.std() / math.sqrt(reps))
    assert ses.mean() == pytest.approx(R.std(), rel=0.1)


def test_correlation_of_gram():
    g = np.array([[[4.0, 1.0], [1.0, 1.0]], [[1.0, -0.5], [-0.5, 1.0]]])
    np.testing.assert_allclose(stats.correlation(g), [0.5, -0.5])


def test_zscore_and_two_sample():
    assert stats.zscore(1.5, 1.0, 0.25) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        stats.zscore(1.0, 1.0, 0.0)
    d, se = stats.two_sample_z(3.0, 0.3, 1.0, 0.4)
    assert d == 2.0 and se == pytest.approx(0.5)


def test_wls_exact_polynomial_recovered():
    n = np.array([16, 32, 64, 128.0])
    y = 0.7 + 3.0 / n - 5.0 / n**2
    fit2 = stats.wls_extrapolate(n, y, np.full(4, 0.01), order=2)
    np.testing.assert_allclose(fit2.beta, [0.7, 3.0, -5.0], atol=1e-10)
    assert fit2.chi2 == pytest.approx(0.0, abs=1e-12) and fit2.scale == 1.0
    fit1 = stats.wls_extrapolate(n, 0.7 + 3.0 / n, np.full(4, 0.01))
    assert fit1.intercept == pytest.approx(0.7) and fit1.slope == pytest.approx(3.0)
    np.testing.assert_allclose(fit1.predict(n), 0.7 + 3.0 / n)


def test_wls_intercept_se_calibrated():
    """Without the Birge factor the intercept z-scores of correct linear data are N(0,1); with it, |z| only shrinks."""
    rng = np.random.default_rng(4)
    n = np.array([32, 64, 128, 256.0])
    se = np.array([0.02, 0.015, 0.01, 0.01])
    zs, zs_b = [], []
    for _ in range(3000):
        y = 0.3 + 2.0 / n + se * rng.standard_normal(4)
        f = stats.wls_extrapolate(n, y, se, birge=False)
        fb = stats.wls_extrapolate(n, y, se)
        zs.append((f.intercept - 0.3) / f.intercept_se)
        zs_b.append((fb.intercept - 0.3) / fb.intercept_se)
    zs, zs_b = np.array(zs), np.array(zs_b)
    assert abs(zs.mean()) < 4 / math.sqrt(3000)
    assert zs.std() == pytest.approx(1.0, abs=0.06)
    assert np.all(np.abs(zs_b) <= np.abs(zs) + 1e-12)
    # and the intercept SE matches the analytic (A^T W A)^{-1}
    A = np.vander(1 / n, 2, increasing=True)
    cov = np.linalg.inv(A.T @ (A / se[:, None] ** 2))
    assert f.intercept_se == pytest.approx(math.sqrt(cov[0, 0]))


def test_wls_detects_a_wrong_limit():
    """Data converging to 0.3 are judged against 0.33: the extrapolation rejects it (|z| >> 4)."""
    rng = np.random.default_rng(5)
    n = np.array([64, 128, 256, 512.0])
    se = 0.002 * np.sqrt(64 / n)
    y = 0.3 + 1.5 / n + se * rng.standard_normal(4)
    f = stats.wls_extrapolate(n, y, se)
    assert abs((f.intercept - 0.33) / f.intercept_se) > 4
    assert abs((f.intercept - 0.3) / f.intercept_se) < 4


@pytest.mark.parametrize("args,match", [
    (([1, 2], [1.0, 2.0], [0.1, 0.1], 3), "order"),
    (([1, 1, 1], [1.0, 2.0, 3.0], [0.1] * 3, 1), "distinct widths"),
    (([1, 2, 3], [1.0, 2.0, 3.0], [0.1, 0.0, 0.1], 1), "se must be positive"),
    (([1, -2, 3], [1.0, 2.0, 3.0], [0.1] * 3, 1), "widths must be positive"),
    (([1, 2, 3], [1.0, np.nan, 3.0], [0.1] * 3, 1), "finite"),
    (([1, 2, 3], [1.0, 2.0], [0.1] * 3, 1), "equal length"),
])
def test_wls_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        stats.wls_extrapolate(*args)


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=4, max_size=4), st.floats(0.1, 10.0))
def test_wls_invariant_under_uniform_error_scaling(y, c):
    """beta does not depend on a common factor in the errors; Cov (no Birge) scales with c^2."""
    n = np.array([8, 16, 32, 64.0])
    se = np.array([0.1, 0.2, 0.3, 0.4])
    f1 = stats.wls_extrapolate(n, y, se, birge=False)
    f2 = stats.wls_extrapolate(n, y, c * se, birge=False)
    np.testing.assert_allclose(f1.beta, f2.beta, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(f2.cov, c**2 * f1.cov, rtol=1e-8)


def test_power_law_fit_recovers_exponent_and_ci():
    rng = np.random.default_rng(0)
    x = np.arange(10, 110, 10, dtype=float)
    hits = 0
    for _ in range(200):
        y = 2.0 * x ** 0.6 * np.exp(0.05 * rng.standard_normal(x.size))
        fit = stats.fit_power_law(x, y)
        hits += fit.contains(0.6)
    assert 180 <= hits <= 199  # 95% CI covers ~190 of 200
    exact = stats.fit_power_law(x, 3 * x ** 0.75)
    assert exact.exponent == pytest.approx(0.75, abs=1e-12) and exact.prefactor == pytest.approx(3.0)


@pytest.mark.parametrize("x, y, kw, match", [
    ([1, 2, 3], [0, 1, 2], {}, "layer index 0"),
    ([1, 2], [1, 2], {}, "at least 3 points"),
    ([1, 2, 3], [1, 2], {}, "same length"),
    ([2, 2, 2], [1, 2, 3], {}, "two distinct values"),
    ([1, 2, 3], [1, 2, 3], {"confidence": 1.0}, "confidence"),
    ([1, 2, 3], [1, 2, 3], {"sigma": [1.0, 1.0]}, "sigma"),
])
def test_power_law_fit_rejects_bad_input(x, y, kw, match):
    with pytest.raises(ValueError, match=match):
        stats.fit_power_law(x, y, **kw)


def test_theory_exponent_fits_the_theory_window():
    from sigprop.theory.equilibrium import equilibrium_window

    L, l = equilibrium_window(10, 100)
    keep = l > 0
    assert stats.theory_exponent(10, 100) == stats.fit_power_law(L[keep], l[keep])
