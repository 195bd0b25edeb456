"""Mean-field recursion with C_W, C_b: pair expectations, recursion, susceptibilities, criticality."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.theory import KernelMap, activation, custom_activation
from sigprop.theory import meanfield as mf
from sigprop.theory.gaussian import expect2, pair_expect

rng = np.random.default_rng(12345)
KAA = rng.uniform(0.05, 6.0, 12)
KBB = rng.uniform(0.05, 6.0, 12)
C = np.concatenate([[1.0, -1.0, 0.0, 0.9999], rng.uniform(-1, 1, 8)])
KAB = C * np.sqrt(KAA * KBB)


def _numeric(f, kinks=()):
    return pair_expect(f, f, np.sqrt(KAA), np.sqrt(KBB), C, kinks, kinks, fine=True)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "abs", "identity", "erf", "exp", "sin", "cos", "step"])
def test_closed_form_pair_expectations(name):
    act = activation(name)
    got = mf.gaussian_pair_expectation(act, KAA, KAB, KBB)
    np.testing.assert_allclose(got, _numeric(act.fn, act.kinks), rtol=1e-12, atol=1e-12)
    if not act.jumps:
        got = mf.gaussian_pair_expectation_deriv(act, KAA, KAB, KBB)
        np.testing.assert_allclose(got, _numeric(act.deriv, act.kinks), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,params", [("tanh", {}), ("gelu", {}), ("selu", {}), ("softplus", {}),
                                         ("elu", {"alpha": 2.5}), ("celu", {"alpha": 0.4})])
def test_numeric_pair_expectations_against_doubled_rule(name, params):
    act = activation(name, **params)
    np.testing.assert_allclose(mf.gaussian_pair_expectation(act, KAA, KAB, KBB), _numeric(act.fn, act.kinks),
                               atol=1e-11)
    np.testing.assert_allclose(mf.gaussian_pair_expectation_deriv(act, KAA, KAB, KBB), _numeric(act.deriv, act.kinks),
                               atol=1e-11)


def test_numeric_pair_expectation_against_adaptive_quadrature():
    K = np.array([[1.7, -0.6], [-0.6, 0.8]])
    for name in ("tanh", "elu"):
        act = activation(name)
        ref = expect2(lambda a, b: float(act(a) * act(b)), K, act.kinks)
        assert mf.gaussian_pair_expectation(act, 1.7, -0.6, 0.8) == pytest.approx(ref, abs=1e-11)


def test_kernel_recursion_definition():
    X = rng.standard_normal((8, 30))
    G0 = X @ X.T / 30
    for name, cw, cb, depth in (("relu", 2.0, 0.0, 50), ("tanh", 1.3, 0.2, 50), ("selu", 1.0, 0.05, 9)):
        K = mf.kernel_recursion(name, G0, depth, cw, cb)
        assert K.shape == (depth, 8, 8)
        np.testing.assert_allclose(K[0], cb + cw * G0, rtol=1e-15)
        np.testing.assert_allclose(K, np.swapaxes(K, 1, 2), rtol=0, atol=0)
        l = 7
        d = np.diag(K[l])
        step = cb + cw * mf.gaussian_pair_expectation(name, d[:, None], K[l], d[None, :])
        np.testing.assert_allclose(K[l + 1], step, rtol=1e-13, atol=1e-14)
    # relu at criticality preserves the diagonal exactly
    K = mf.kernel_recursion("relu", G0, 20, 2.0)
    np.testing.assert_allclose(np.diagonal(K, axis1=1, axis2=2), np.tile(np.diag(G0) * 2.0, (20, 1)), rtol=1e-13)


@pytest.mark.parametrize("name", ["tanh", "gelu", "relu", "selu"])
def test_normalised_setting_follows_kappa(name):
    km = KernelMap(name)
    rho0 = 0.3
    G0 = km.C2 * np.array([[1.0, rho0], [rho0, 1.0]])  # so that K^(1) has unit diagonal
    K = mf.kernel_recursion(name, G0, 12, 1.0 / km.C2)
    np.testing.assert_allclose(K[:, 0, 0], 1.0, atol=1e-12)
    np.testing.assert_allclose(K[:, 0, 1], km.sequence(rho0, 11), atol=1e-11)


def test_susceptibilities():
    K = np.array([0.0, 0.3, 1.0, 4.0])
    np.testing.assert_allclose(mf.chi_perp("relu", K[1:], 2.0), 1.0, rtol=1e-15)
    np.testing.assert_allclose(mf.chi_parallel("relu", K[1:], 2.0), 1.0, rtol=1e-13)
    np.testing.assert_allclose(mf.variance_map("relu", K, 2.0, 0.1), 0.1 + K, rtol=1e-15)
    assert (mf.chi_perp("tanh", 0.0, 1.7) == pytest.approx(1.7)
            and mf.chi_parallel("tanh", 0.0, 1.7) == pytest.approx(1.7))
    for name in ("tanh", "gelu", "elu"):
        h = 1e-5
        fd = (mf.variance_map(name, 0.7 + h, 1.3) - mf.variance_map(name, 0.7 - h, 1.3)) / (2 * h)
        assert mf.chi_parallel(name, 0.7, 1.3) == pytest.approx(fd, rel=1e-8)
    with pytest.raises(ValueError):
        mf.chi_perp("step", 1.0, 1.0)


def test_fixed_point_variance():
    Ks = mf.fixed_point_variance("tanh", 1.5)
    assert Ks > 0 and mf.variance_map("tanh", Ks, 1.5) == pytest.approx(Ks, rel=1e-13)
    assert mf.fixed_point_variance("relu", 2.0, K0=0.7) == 0.7  # marginal: every K is fixed
    assert mf.fixed_point_variance("relu", 1.0) == 0.0
    assert mf.fixed_point_variance("relu", 1.0, 0.5) == pytest.approx(1.0, rel=1e-13)
    assert mf.fixed_point_variance("tanh", 0.8) == 0.0
    Ks = mf.fixed_point_variance("gelu", 1.2, 0.3)
    assert mf.variance_map("gelu", Ks, 1.2, 0.3) == pytest.approx(Ks, rel=1e-13)
    with pytest.raises(ValueError, match="diverges"):
        mf.fixed_point_variance("relu", 3.0)


@settings(max_examples=examples(10), deadline=None)
@given(st.floats(0.8, 3.0), st.floats(0.0, 0.5))
def test_correlation_map_slope_at_one_is_chi_perp(cw, cb):
    Ks = mf.fixed_point_variance("tanh", cw, cb)
    if Ks < 1e-3:
        return
    h = 1e-6
    slope = (mf.correlation_map("tanh", 1.0, cw, cb, K_star=Ks)
             - mf.correlation_map("tanh", 1.0 - h, cw, cb, K_star=Ks)) / h
    assert mf.correlation_map("tanh", 1.0, cw, cb, K_star=Ks) == pytest.approx(1.0, abs=1e-12)
    assert slope == pytest.approx(float(mf.chi_perp("tanh", Ks, cw)), rel=1e-4)


def test_relu_critical_correlation_map_is_normalised_kappa():
    c = np.linspace(-1, 1, 11)
    np.testing.assert_allclose(mf.correlation_map("relu", c, 2.0, K_star=1.3), KernelMap("relu")(c), atol=1e-15)
    h = 1e-7
    slope = (mf.correlation_map("relu", c[1:-1] + h, 2.0, K_star=1.0)
             - mf.correlation_map("relu", c[1:-1] - h, 2.0, K_star=1.0)) / (2 * h)
    np.testing.assert_allclose(slope, 1 - np.arccos(c[1:-1]) / math.pi, atol=1e-7)


def test_critical_points():
    cp = mf.critical_point("relu")
    assert (cp.C_b, cp.C_W) == (0.0, 2.0)
    cp = mf.critical_point("tanh")
    assert (cp.C_b, cp.C_W, cp.K_star, cp.chi_perp) == (0.0, 1.0, 0.0, 1.0)
    assert mf.critical_point(activation("leaky_relu", slope=0.5)).C_W == pytest.approx(2 / 1.25)
    assert mf.critical_point("erf").C_W == pytest.approx(math.pi / 4)
    cp = mf.critical_point("tanh", C_b=0.05)
    assert cp.chi_perp == pytest.approx(1.0, abs=1e-12) and cp.K_star > 0
    assert mf.variance_map("tanh", cp.K_star, cp.C_W, 0.05) == pytest.approx(cp.K_star, rel=1e-12)
    assert 1.0 < cp.C_W < 2.5
    line = mf.critical_line("tanh", [0.0, 0.05])
    assert line.shape == (2,) and line[0] == 1.0 and line[1] == pytest.approx(cp.C_W)
    with pytest.raises(ValueError, match="homogeneous"):
        mf.critical_point("relu", C_b=0.1)
    # elu/selu: kink at 0 with phi(0) = 0 -> the K* -> 0 limit, chi_perp(0+) = C_W (phi'(0+)^2 + phi'(0-)^2)/2
    cp = mf.critical_point("elu")
    assert cp.C_W == pytest.approx(1.0, rel=1e-9) and cp.K_star < 1e-10
    cp = mf.critical_point("elu", C_b=0.1)
    assert cp.chi_perp == pytest.approx(1.0, abs=1e-9) and cp.chi_parallel <= 1.0


@pytest.mark.parametrize("name,cb", [("gelu", 0.1), ("silu", 0.05), ("softplus", 0.0), ("exp", 0.0)])
def test_no_critical_point_where_the_attracting_fixed_point_is_lost(name, cb):
    """GELU at C_b = 0.1: the attracting variance fixed point disappears in a saddle-node (chi_parallel = 1)
    at C_W ~ 2.1 while chi_perp ~ 0.85 < 1, after which the variance diverges: no critical point."""
    with pytest.raises(ValueError, match="attracting"):
        mf.critical_point(name, C_b=cb)


def test_bad_input():
    with pytest.raises(ValueError, match="semi-definite"):
        mf.gaussian_pair_expectation("tanh", 1.0, 2.0, 1.0)
    with pytest.raises(ValueError):
        mf.gaussian_pair_expectation("tanh", -1.0, 0.0, 1.0)
    with pytest.raises(ValueError):
        mf.gaussian_pair_expectation("tanh", float("nan"), 0.0, 1.0)
    with pytest.raises(ValueError, match="delta"):
        mf.gaussian_pair_expectation_deriv("step", 1.0, 0.5, 1.0)
    G0 = np.eye(3)
    with pytest.raises(ValueError, match="depth"):
        mf.kernel_recursion("relu", G0, 0, 2.0)
    with pytest.raises(ValueError, match="C_W"):
        mf.kernel_recursion("relu", G0, 3, -1.0)
    with pytest.raises(ValueError, match="C_b"):
        mf.kernel_recursion("relu", G0, 3, 1.0, -0.5)
    with pytest.raises(ValueError, match="symmetric"):
        mf.kernel_recursion("relu", np.array([[1.0, 0.2], [0.1, 1.0]]), 3, 1.0)
    with pytest.raises(ValueError, match="semi-definite"):
        mf.kernel_recursion("relu", np.array([[1.0, 2.0], [2.0, 1.0]]), 3, 1.0)
    with pytest.raises(ValueError, match="square"):
        mf.kernel_recursion("relu", np.ones(3), 3, 1.0)
    with pytest.raises(ValueError, match="overflow"):
        mf.kernel_recursion("exp", 50 * np.eye(2), 5, 3.0)


def test_custom_activation_uses_numeric_path():
    act = custom_activation(lambda x: np.maximum(x - 0.5, 0.0), kinks=(0.5,), derivative=lambda x: (x > 0.5) * 1.0)
    ref = expect2(lambda a, b: max(a - 0.5, 0) * max(b - 0.5, 0), np.array([[1.2, 0.4], [0.4, 0.9]]), (0.5,))
    assert mf.gaussian_pair_expectation(act, 1.2, 0.4, 0.9) == pytest.approx(ref, abs=1e-11)


def test_gelu_critical_line_starts_at_the_double_critical_point():
    """Cross-check with sigprop.theory.correlators.double_critical_point (chi_par = chi_perp = 1): just above its
    C_b the critical point exists, with chi_parallel -> 1 and (C_W, K*) -> the double critical point."""
    from sigprop.theory.correlators import double_critical_point

    cw, cb, K = double_critical_point("gelu")
    cp = mf.critical_point("gelu", C_b=cb + 1e-4)
    assert cp.C_W == pytest.approx(cw, abs=2e-4) and cp.K_star == pytest.approx(K, abs=0.02)
    assert 0.9999 < cp.chi_parallel <= 1.0
    with pytest.raises(ValueError):
        mf.critical_point("gelu", C_b=cb - 0.02)
