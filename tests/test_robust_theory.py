"""The theory over the whole float64 range, and the correlators' bounds: no wrong finite number, no silent zero, inf
or NaN, no hang, no traceback.

Gaussian pair expectations used to form ``Kaa * Kbb``, which overflows from variances ~1.34e154 on (the correlation
then read 0: tanh, erf -> 0, sigmoid -> 1/4, gelu -> K/(2 pi), relu -> inf) and underflows below ~1e-154.  The true
values at huge variances are the limits of the saturated activation: tanh/erf -> sign, sigmoid -> step, so
``(2/pi) arcsin(rho)`` and ``1/4 + arcsin(rho)/(2 pi)``; relu-like activations -> K times the arc-cosine kernel.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from sigprop.theory.correlators.deep_linear import MAX_LAYERS, deep_linear_moments
from sigprop.theory.correlators.vertex import vertex_recursion
from sigprop.theory.errors import InputError
from sigprop.theory.meanfield import gaussian_pair_expectation, gaussian_pair_expectation_deriv, kernel_recursion
from sigprop.theory.rainbow import rainbow_kernels
from sigprop.validation.cli import main
from sigprop.validation.cli.correlators import parse_widths

HUGE = [1.34e154, 1e200, 1e300, 1.7e308]


def relu_unit(rho: float) -> float:
    """E[relu(X) relu(Y)] for unit variances and correlation rho (the arc-cosine kernel of degree 1)."""
    return (math.sqrt(1.0 - rho * rho) + (math.pi - math.acos(rho)) * rho) / (2.0 * math.pi)


# --- gaussian_pair_expectation at huge and tiny variances -----------------------------------------------------------


@pytest.mark.parametrize("K", HUGE)
@pytest.mark.parametrize("name", ["tanh", "erf"])
def test_bounded_odd_activations_at_huge_variance_are_sign_sign(name, K):
    """The issue's case: rho = 0.5 gave 0 (true 1/3) once Kaa Kbb overflowed."""
    rho = np.array([0.5, -0.3, 0.9, 1.0])
    got = gaussian_pair_expectation(name, K, rho * K, K)
    np.testing.assert_allclose(got, 2.0 / np.pi * np.arcsin(rho), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("K", HUGE)
@pytest.mark.parametrize("name", ["sigmoid", "step"])
def test_sigmoid_and_step_at_huge_variance(name, K):
    """sigmoid gave 0.25 (the rho = 0 value); the true limit is the step kernel, 1/3 at rho = 0.5."""
    rho = np.array([0.5, -0.3, 1.0])
    got = gaussian_pair_expectation(name, K, rho * K, K)
    np.testing.assert_allclose(got, 0.25 + np.arcsin(rho) / (2.0 * np.pi), rtol=1e-14)


@pytest.mark.parametrize("K", [1e200, 1e300, 1.7e308])
@pytest.mark.parametrize("name", ["relu", "gelu", "gelu_tanh", "softplus", "silu", "elu"])
def test_relu_like_activations_at_huge_variance(name, K):
    """gelu at K = 1e200 gave 1.59e199 (true 3.04e199), relu inf; elu inf at 1.7e308."""
    got = float(gaussian_pair_expectation(name, K, 0.5 * K, K))
    assert got == pytest.approx(relu_unit(0.5) * K, rel=1e-13)


def test_gelu_issue_value_and_abs():
    assert float(gaussian_pair_expectation("gelu", 1e200, 0.5e200, 1e200)) == pytest.approx(3.0449889052211e199,
                                                                                              rel=1e-12)
    # abs: E|X||Y| = (2/pi)(sqrt(1 - rho^2) + rho arcsin(rho))
    want = 2.0 / math.pi * (math.sqrt(0.75) + 0.5 * math.asin(0.5)) * 1e300
    assert float(gaussian_pair_expectation("abs", 1e300, 0.5e300, 1e300)) == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("K", [1e-200, 1e-250, 1e-300])
def test_tiny_variances_keep_the_correlation(K):
    """Kaa Kbb underflowed to 0, so rho read 0: relu gave K/(2 pi), the derivative kernels the rho = 0 value."""
    assert float(gaussian_pair_expectation("relu", K, 0.5 * K, K)) == pytest.approx(relu_unit(0.5) * K, rel=1e-14)
    assert float(gaussian_pair_expectation("tanh", K, 0.5 * K, K)) == pytest.approx(0.5 * K, rel=1e-14)
    assert float(gaussian_pair_expectation("elu", K, 0.5 * K, K)) == pytest.approx(0.5 * K, rel=1e-14)
    step = 0.25 + math.asin(0.5) / (2.0 * math.pi)  # <relu'(u_a) relu'(u_b)> = P(u_a > 0, u_b > 0)
    assert float(gaussian_pair_expectation_deriv("relu", K, 0.5 * K, K)) == pytest.approx(step, rel=1e-14)


def test_elu_at_extreme_variance_ratios():
    """elu's semi-analytic rule cancelled at a tiny (or huge) variance: Kaa = 1e40, Kbb = 1e-40 gave -159 (true
    E[relu-like(X) Y] rho ~ -0.35 for phi ~ relu on the huge side and ~ identity on the tiny side)."""
    for ka in (1e20, 1e40, 1e200):
        got = float(gaussian_pair_expectation("elu", ka, -0.7, 1.0 / ka))
        assert got == pytest.approx(-0.35, rel=1e-12)
        got = float(gaussian_pair_expectation("elu", 1.0 / ka, -0.7, ka))
        assert got == pytest.approx(-0.35, rel=1e-12)


def _mp_expect_given_y(cond, outer):
    """E[outer(Y) cond(Y)] over Y ~ N(0, 1) by mpmath quadrature."""
    dens = lambda y: mpmath.exp(-y * y / 2) / mpmath.sqrt(2 * mpmath.pi)  # noqa: E731
    return float(mpmath.quad(lambda y: outer(y) * cond(y) * dens(y), [-mpmath.inf, 0, mpmath.inf]))


def test_mixed_huge_and_moderate_variance_against_mpmath():
    """Kaa = 1e308 (integrated scaled for gelu), Kbb = 10: Kaa Kbb overflows.  References by conditioning on Y:
    E[sign(X) | Y] = erf(rho Y / sqrt(2 (1 - rho^2))), E[relu(X) | Y] = mu Phi(mu/s) + s phi(mu/s)."""
    mpmath.mp.dps = 30
    rho = mpmath.mpf("0.3")
    s = mpmath.sqrt(1 - rho**2)
    sb = mpmath.sqrt(10)
    kab = 0.3 * 1e154 * math.sqrt(10.0)
    ref_tanh = _mp_expect_given_y(lambda y: mpmath.erf(rho * y / (s * mpmath.sqrt(2))), lambda y: mpmath.tanh(sb * y))
    assert float(gaussian_pair_expectation("tanh", 1e308, kab, 10.0)) == pytest.approx(ref_tanh, rel=1e-12)

    def relu_given_y(y):
        mu = rho * y
        return mu * mpmath.ncdf(mu / s) + s * mpmath.npdf(mu / s)

    ref_gelu = _mp_expect_given_y(relu_given_y, lambda y: sb * y * mpmath.ncdf(sb * y))
    got = float(gaussian_pair_expectation("gelu", 1e308, kab, 10.0))
    assert got == pytest.approx(ref_gelu * 1e154, rel=1e-12)


def test_sin_cos_at_large_variances_are_not_nan():
    """exp(-(Kaa+Kbb)/2) sinh(Kab) was 0 * inf = NaN from Kab ~ 710 on."""
    for K in (1e3, 1e200, 1.7e308):
        assert float(gaussian_pair_expectation("sin", K, K, K)) == pytest.approx(0.5, rel=1e-15)  # E sin^2
        assert float(gaussian_pair_expectation("cos", K, K, K)) == pytest.approx(0.5, rel=1e-15)
        assert float(gaussian_pair_expectation("sin", K, 0.5 * K, K)) == 0.0  # true e^(-K/2) sinh(K/2) < 1e-200
    # Kab just above the old overflow: e^(-(Kaa+Kbb)/2) sinh(Kab) = (1 - e^(-2 Kab)) / 2 at Kaa = Kbb = Kab
    assert float(gaussian_pair_expectation("sin", 720.0, 720.0, 720.0)) == pytest.approx(0.5, rel=1e-15)


def test_erf_derivative_kernel_at_huge_variance():
    """(1 + 2Kaa)(1 + 2Kbb) overflowed (and cancelled against 4 Kab^2 at rho = 1)."""
    K = 1e200
    want = 2.0 / math.pi / (K * math.sqrt(0.75))  # (2/pi) / sqrt((1/2 + K)^2 - Kab^2), the 1/2 negligible
    assert float(gaussian_pair_expectation_deriv("erf", K, 0.5 * K, K)) == pytest.approx(want, rel=1e-14)
    K = 1e20  # rho = 1: (4/pi) / sqrt(1 + 4K) exactly
    assert float(gaussian_pair_expectation_deriv("erf", K, K, K)) == pytest.approx(4.0 / math.pi / math.sqrt(1 + 4 * K),
                                                                                   rel=1e-14)


def test_unrepresentable_value_is_refused_naming_the_variances():
    """exp's <phi phi> = exp((Kaa + Kbb)/2 + Kab) is beyond float64 here: an error, not inf."""
    with pytest.raises(InputError, match="Kaa=500.*variances Kaa, Kbb"):
        gaussian_pair_expectation("exp", 500.0, 500.0, 500.0)
    assert math.isfinite(float(gaussian_pair_expectation("exp", 200.0, 200.0, 200.0)))


def test_psd_check_at_huge_variances():
    """Kab^2 <= Kaa Kbb compared as inf <= inf passed anything once the squares overflowed."""
    with pytest.raises(InputError, match="semi-definite"):
        gaussian_pair_expectation("tanh", 1e200, 3e200, 1e200)
    with pytest.raises(InputError, match="semi-definite"):
        gaussian_pair_expectation("tanh", 1e-200, 3e-200, 1e-200)


# --- knock-on: kernel_recursion, rainbow_kernels --------------------------------------------------------------------


def test_kernel_recursion_at_huge_C_W_is_not_zero():
    """The issue's case: kernel_recursion("tanh", [[1, .5], [.5, 1]], depth=2, C_W=1e200) gave a zero matrix."""
    K = kernel_recursion("tanh", [[1, 0.5], [0.5, 1]], depth=2, C_W=1e200)
    np.testing.assert_allclose(K[1] / 1e200, [[1.0, 1.0 / 3.0], [1.0 / 3.0, 1.0]], rtol=1e-14)


def test_rainbow_kernels_at_huge_C1_is_not_zero():
    """The issue's case: rainbow_kernels("tanh", X, 1e200, []) gave a zero post-activation kernel."""
    X = np.random.default_rng(0).standard_normal((3, 4))
    rk = rainbow_kernels("tanh", X, 1e200, [])
    G = X @ X.T
    rho = G / np.sqrt(np.outer(np.diag(G), np.diag(G)))
    np.testing.assert_allclose(rk.postact[0], 2.0 / np.pi * np.arcsin(np.clip(rho, -1.0, 1.0)), rtol=1e-14,
                               atol=1e-15)
    # rho = 1 exactly on the diagonal: a rounded rho = 1 - 1e-16 would give 1 - 1e-8 (arcsin is steep at 1)
    assert np.max(np.abs(np.diag(rk.postact[0]) - 1.0)) <= 1e-15


# --- correlators: overflow refused, counts bounded, one line and exit 2 ---------------------------------------------


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("sigprop correlators: error: "), err
    return err


def test_deep_linear_moments_refuse_overflow_naming_the_largest_depth():
    """8x3300 printed inf from layer 3182 on; 3181 layers are the most that stay finite."""
    g = deep_linear_moments(2, [8] * 3181)
    assert np.all(np.isfinite(g)) and g[-1] > 1e307
    with pytest.raises(InputError, match="at layer 3182.*at most 3181 layers"):
        deep_linear_moments(2, [8] * 3300)
    with pytest.raises(InputError, match="underflows.*at most 7 layers"):
        deep_linear_moments(1, [8] * 10, C_W=1e-40)


def test_cli_deep_linear_overflow_is_one_line_exit_2(capsys):
    assert main(["correlators", "deep-linear", "--widths", "8x3300"]) == 2
    err = one_error_line(capsys)
    assert "widths" in err and "at most 3181 layers" in err
    assert "inf" not in capsys.readouterr().out


def test_cli_deep_linear_huge_G0_is_one_line_exit_2(capsys):
    """--widths 1x3 --m 7 --G0 1e308 raised OverflowError with a traceback."""
    assert main(["correlators", "deep-linear", "--widths", "1x3", "--m", "7", "--G0", "1e308"]) == 2
    err = one_error_line(capsys)
    assert "G0=1e+308" in err and "m=7" in err


def test_cli_widths_count_is_bounded_before_any_work(capsys):
    """--widths 8x100000000 ran for minutes (and built a 1e8-entry list first)."""
    assert main(["correlators", "deep-linear", "--widths", "8x100000000"]) == 2
    err = one_error_line(capsys)
    assert f"at most {MAX_LAYERS}" in err and "--widths" in err
    with pytest.raises(InputError, match="at most"):
        parse_widths("8x10000000000000000000,8")
    assert len(parse_widths(f"8x{MAX_LAYERS}")) == MAX_LAYERS


@pytest.mark.parametrize("what, m", [("deep-linear", 1001), ("relu", 31), ("deep-linear", 0)])
def test_cli_m_is_bounded(capsys, what, m):
    assert main(["correlators", what, "--widths", "8x2", "--m", str(m)]) == 2
    assert "--m must be in [1, " in one_error_line(capsys)


def test_cli_vertex_overflow_is_one_line_exit_2(capsys):
    """The same overflow in the vertex recursion (OverflowError traceback before)."""
    assert main(["correlators", "vertex", "--activation", "linear", "--widths", "8x900", "--C-W", "1.5"]) == 2
    assert "at most 857 layers" in one_error_line(capsys)
    with pytest.raises(InputError, match="float64 range at layer"):
        vertex_recursion("relu", [8] * 200, 0.1)  # K underflows (ZeroDivisionError before)


def test_equilibrium_depth_is_bounded_before_any_work():
    """A depth beyond MAX_DEPTH (memory grows with it) is refused naming the argument, before any array is built."""
    from sigprop.theory.equilibrium import MAX_DEPTH, equilibrium_layer, equilibrium_layers

    with pytest.raises(InputError, match=rf"depth must be an integer in \[2, {MAX_DEPTH}\]"):
        equilibrium_layer(10**9)
    with pytest.raises(InputError, match=r"depths\[i\] must be an integer in \[2, "):
        equilibrium_layers([10, MAX_DEPTH + 1])
    assert equilibrium_layer(100) == equilibrium_layers([100])[0]
