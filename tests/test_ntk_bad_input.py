"""Bad input of the finite-width NTK theory (``product_expectation``, ``vertex_any_p``, ``finite_width_ntk``): every
case ends in an InputError (InputTypeError for a wrong type) naming the argument and its allowed range, before any
Gaussian expectation is computed; what is defined for a kinked or smooth activation still runs."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
from scipy.special import ndtr

from sigprop.theory.activations import Activation
from sigprop.theory.correlators import finite_width_ntk, vertex_any_p
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.theory.gaussian_products import product_expectation

GP = importlib.import_module("sigprop.theory.gaussian_products")
VP = importlib.import_module("sigprop.theory.correlators.vertex_any_p")
G2 = np.array([[1.0, 0.3], [0.3, 1.0]])
NOT_PSD = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues -1, 3
COMPLEX = np.array([[1.0, 0.2j], [-0.2j, 1.0]])


@pytest.fixture
def no_work(monkeypatch):
    """Any Gaussian expectation fails the test: the checks must come first."""
    def fail(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(GP, "_nested", fail)
    monkeypatch.setattr(GP, "_isserlis", fail)
    monkeypatch.setattr(VP, "product_expectation", fail)


# --------------------------------------------------------------------------------------------
# product_expectation
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("factors, K, err, match", [
    ([("relu", 0)] * 2, NOT_PSD, InputError, r"K must be positive semi-definite .*most negative eigenvalue -1\b"),
    ([("relu", 0)], [[-1.0]], InputError, r"K must be positive semi-definite \(variances >= 0\), got K\[0, 0\] = -1"),
    ([("relu", 0)] * 2, COMPLEX, InputTypeError, "K must be a real numeric array"),
    ([("relu", 0)], np.array([[True]]), InputTypeError, "K must be a real numeric array"),
    ([("relu", 0)], [["1"]], InputTypeError, "K must be a real numeric array"),
    ([("relu", 0)], [[np.inf]], InputError, "K must be finite"),
    ([("relu", 0)] * 2, [[1.0, np.nan], [np.nan, 1.0]], InputError, "K must be finite"),
    ([("relu", 0)], [[1e308]], InputError, "K must have entries below half the float64 maximum"),
    ([("relu", 0)] * 5, np.eye(5), InputError, "1 to 4"),
    ([("relu", 2)], [[1.0]], InputError, r"relu has kinks at \(0.0,\); .*allowed orders: 0, 1"),
    ([("step", 1)], [[1.0]], InputError, r"step jumps at \(0.0,\); .*allowed: order 0"),
    ([("relu", 1.0)], [[1.0]], InputError, r"factors\[0\]\[1\] \(derivative order\) must be 0, 1 or 2"),
])
def test_product_expectation_refuses(no_work, factors, K, err, match):
    with pytest.raises(err, match=match):
        product_expectation(factors, K)


@pytest.mark.parametrize("nodes, err", [(1, InputError), (65, InputError), (12.0, InputTypeError),
                                        (True, InputTypeError)])
def test_product_expectation_nodes(no_work, nodes, err):
    with pytest.raises(err, match=r"nodes must be an integer in \[2, 64\]"):
        product_expectation([("relu", 0)], [[1.0]], nodes=nodes)


def test_second_derivative_needs_a_sympy_form(no_work):
    smooth_no_sympy = Activation("mytanh", (), np.tanh, lambda x: 1.0 - np.tanh(x) ** 2)
    with pytest.raises(InputError, match=r"second derivative of mytanh needs a SymPy form \(allowed: 0, 1\)"):
        product_expectation([(smooth_no_sympy, 2)], [[1.0]])


def test_what_is_defined_still_runs():
    """Order 1 of a kink and order 2 of a smooth activation are functions: computed, not refused."""
    assert product_expectation([("relu", 1)], [[1.0]]) == pytest.approx(0.5, rel=1e-14)
    assert np.isfinite(product_expectation([("gelu", 2), ("gelu", 0)], G2))


@pytest.mark.parametrize("factors, K", [([("exp", 0)] * 2, np.diag([1000.0, 1000.0])),  # e^1000
                                        ([("identity", 0)] * 4, np.full((4, 4), 1e200))])  # Isserlis: 3e400
def test_product_expectation_overflow_is_refused(factors, K):
    with pytest.raises(InputError, match="the expectation leaves the float64 range"):
        product_expectation(factors, K)


# --------------------------------------------------------------------------------------------
# vertex_any_p and finite_width_ntk: shared arguments
# --------------------------------------------------------------------------------------------
def _vertex(**kw):
    args = dict(activation="relu", widths=[4, 4], C_W=2.0, C_b=0.0, G0=G2)
    args.update(kw)
    return vertex_any_p(**args)


def _ntk(**kw):
    args = dict(activation="relu", widths=[4, 4], C_W=2.0, C_b=0.0, G0=G2)
    args.update(kw)
    return finite_width_ntk(**args)


COMMON = [
    (dict(G0=NOT_PSD), InputError, r"G0 must be positive definite .*smallest eigenvalue -1\b"),
    (dict(G0=np.array([[1.0, 1.0], [1.0, 1.0]])), InputError, "smallest eigenvalue"),
    (dict(G0=COMPLEX), InputTypeError, "G0 must be a real numeric array"),
    (dict(G0=[["1"]]), InputTypeError, "G0 must be a real numeric array"),
    (dict(G0=[[True]]), InputTypeError, "G0 must be a real numeric array"),
    (dict(G0=[[1.0, np.nan], [np.nan, 1.0]]), InputError, "G0 must be finite"),
    (dict(G0=[[np.inf]]), InputError, "G0 must be finite"),
    (dict(G0=[[1.0, 0.1], [0.2, 1.0]]), InputError, r"G0 must be symmetric, got max \|G0 - G0\^T\| = 0.1"),
    (dict(G0=np.ones(3)), InputError, "square"),
    (dict(widths=[4, 0]), InputError, "widths must hold integers >= 1"),
    (dict(widths=[4.5, 4]), InputError, "widths must hold integers >= 1"),
    (dict(widths=[np.nan, 4]), InputError, "widths must hold integers >= 1"),
    (dict(widths="44"), InputTypeError, "widths must be a real numeric array"),
    (dict(widths=[True, True]), InputTypeError, "widths must be a real numeric array"),
    (dict(widths=[4 + 0j, 4]), InputTypeError, "widths must be a real numeric array"),
    (dict(widths=4), InputTypeError, "widths must be a sequence"),
    (dict(C_W=0.0), InputError, "C_W must be"),
    (dict(C_W=-1.0), InputError, "C_W must be"),
    (dict(C_W=np.nan), InputError, "C_W must be finite"),
    (dict(C_W=2.0 + 0j), InputTypeError, "C_W must be a real"),
    (dict(C_b=-0.1), InputError, "C_b must be"),
    (dict(C_b=np.inf), InputError, "C_b must be finite"),
    (dict(C_b=1j), InputTypeError, "C_b must be a real"),
    (dict(activation="step"), InputError,
     r"activation step is discontinuous \(jumps at \(0.0,\)\): sigma' is a delta mass .*kinks included"),
    (dict(activation="nosuch"), InputError, "activation: unknown name 'nosuch'"),
    (dict(C_W=1e308, G0=[[10.0]]), InputError, r"first-layer kernel C_b \+ C_W G0 overflows float64"),
]


@pytest.mark.parametrize("kw, err, match", COMMON)
def test_vertex_any_p_refuses(no_work, kw, err, match):
    with pytest.raises(err, match=match):
        _vertex(**kw)


@pytest.mark.parametrize("kw, err, match", COMMON)
def test_finite_width_ntk_refuses(no_work, kw, err, match):
    with pytest.raises(err, match=match):
        _ntk(**kw)


def test_messages_name_the_function(no_work):
    for fn, who in ((_vertex, "vertex_any_p"), (_ntk, "finite_width_ntk")):
        for kw in (dict(G0=NOT_PSD), dict(G0=COMPLEX), dict(C_W=0.0), dict(C_b=-1.0), dict(activation="step"),
                   dict(widths="44")):
            with pytest.raises(InputError, match=f"^{who}: "):
                fn(**kw)


# --------------------------------------------------------------------------------------------
# P beyond the bound: the bound and the work it would need, before any work
# --------------------------------------------------------------------------------------------
def test_vertex_any_p_too_many_inputs(no_work):
    with pytest.raises(InputError, match=r"vertex_any_p: G0 must be \(P, P\) with 1 <= P <= 12, got P = 13: every "
                                         r"layer would need 1820 four-point Gaussian expectations .*91x91"):
        _vertex(G0=np.eye(13))


@pytest.mark.parametrize("P, count", [(7, 2 * 210 + 28 ** 2), (13, 2 * 1820 + 91 ** 2)])
def test_finite_width_ntk_too_many_inputs(no_work, P, count):
    """The NTK's own bound (6), not vertex_any_p's (12), whatever P is."""
    with pytest.raises(InputError, match=rf"finite_width_ntk: G0 must be \(P, P\) with 1 <= P <= 6, got P = {P}: "
                                         rf"every layer would need {count} four-point"):
        _ntk(G0=np.eye(P))


# --------------------------------------------------------------------------------------------
# finite_width_ntk only: per-layer variances and learning rates
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, err, match", [
    (dict(C_W=[2.0, 0.0]), InputError, r"finite_width_ntk: C_W must be > 0 in every layer, got \[2.0, 0.0\]"),
    (dict(C_b=[0.0, -0.5]), InputError, r"finite_width_ntk: C_b must be >= 0 in every layer"),
    (dict(lambda_b=-1.0), InputError, r"finite_width_ntk: lambda_b must be >= 0 in every layer"),
    (dict(lambda_W=[1.0, -1.0]), InputError, r"finite_width_ntk: lambda_W must be >= 0 in every layer"),
    (dict(lambda_W=[1.0, np.nan]), InputError, r"finite_width_ntk: lambda_W must be finite"),
    (dict(lambda_b=np.inf), InputError, r"finite_width_ntk: lambda_b must be finite"),
    (dict(lambda_W=1j), InputTypeError, r"finite_width_ntk: lambda_W must be a real numeric array"),
    (dict(lambda_b=[True, False]), InputTypeError, r"finite_width_ntk: lambda_b must be a real numeric array"),
    (dict(lambda_W=[1.0, 1.0, 1.0]), InputError, r"lambda_W must be a number or have one entry per layer \(2\)"),
    (dict(lambda_W=1e308, G0=[[10.0]]), InputError, r"first-layer kernel lambda_b \+ lambda_W G0 overflows"),
])
def test_finite_width_ntk_per_layer_arguments(no_work, kw, err, match):
    with pytest.raises(err, match=match):
        _ntk(**kw)


def test_kinked_activation_is_defined_for_the_ntk():
    """The NTK statistics need sigma' only (K-derivatives by score weights): a kink is fine."""
    r = _ntk(activation="relu", widths=[4, 4, 4])
    assert np.all(np.isfinite(r.A)) and np.all(np.isfinite(r.B))


# --------------------------------------------------------------------------------------------
# growing activations at large variance: exact, or refused, never a wrong finite number
# --------------------------------------------------------------------------------------------
def _exp_relu(k: float, c: float) -> float:
    """E[e^{z_1} relu(z_2)], var z_1 = var z_2 = k, cov c: e^{k/2} E[relu(N(c, k))]."""
    s = np.sqrt(k)
    return float(np.exp(k / 2) * (c * ndtr(c / s) + s * np.exp(-c * c / (2 * k)) / np.sqrt(2 * np.pi)))


@pytest.mark.parametrize("k", [16.0, 100.0, 400.0])
def test_exp_at_large_variance_is_exact(k):
    """The fixed range [-9, 9] missed the peak of e^z at variance >> 1 (e^100 came out 84% low)."""
    assert product_expectation([("exp", 0), ("exp", 1)], np.diag([k, k])) == pytest.approx(np.exp(k), rel=1e-13)
    K = np.array([[k, k / 2], [k / 2, k]])
    assert product_expectation([("exp", 0), ("relu", 0)], K) == pytest.approx(_exp_relu(k, k / 2), rel=1e-12)
    assert product_expectation([("exp", 2), ("cos", 0)], K) == pytest.approx(
        np.exp(k / 2) * np.cos(k / 2) * np.exp(-k / 2), rel=1e-9, abs=1e-12)


def test_exp_four_factors_and_beyond_e709():
    """Four correlated exp factors: e^{1^T K 1 / 2}; a finite value above e^709 (e^{400} E[relu]) still computed."""
    K = 3.0 * np.eye(4) + 1.0
    assert product_expectation([("exp", 0)] * 4, K) == pytest.approx(np.exp(0.5 * K.sum()), rel=1e-13)
    K2 = np.array([[800.0, 400.0], [400.0, 800.0]])
    want = np.exp(400.0) * (400.0 * ndtr(400.0 / np.sqrt(800.0)) + np.sqrt(800.0 / (2 * np.pi)) * np.exp(-100.0))
    assert product_expectation([("exp", 0), ("relu", 0)], K2) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("factors, K", [([("exp", 0)] * 2, np.diag([800.0, 800.0])),  # was 9.9e264; true e^800
                                        ([("exp", 0), ("exp", 1), ("gelu", 0)], np.diag([720.0, 720.0, 1.0]))])
def test_exp_overflow_is_refused_not_finite(factors, K):
    with pytest.raises(InputError, match=r"K: the exp factors give e\^\(1_S\^T K 1_S / 2\) = e\^.*leaves the "
                                         r"float64 range \(allowed: below e\^709\.78"):
        product_expectation(factors, K)


MYEXP = Activation("myexp", (), np.exp, np.exp)


@pytest.mark.parametrize("K", [[[800.0]], [[3.0]], np.diag([1.0, 50.0])])
def test_custom_growing_activation_refused_with_its_bound(no_work, K):
    """A custom activation growing like e^z: the largest variance the fixed range resolves is stated (~1.59)."""
    k = len(K)
    with pytest.raises(InputError, match=rf"K: factors\[{k - 1}\] \(myexp, order 0\) grows too fast .* variance "
                                         rf"K\[{k - 1}, {k - 1}\] = \d+.*allowed: K\[{k - 1}, {k - 1}\] <= 1\.59"):
        product_expectation([(MYEXP, 0)] * k, K)


def test_custom_growing_activation_within_its_bound_runs():
    assert product_expectation([(MYEXP, 0)], [[1.0]]) == pytest.approx(np.exp(0.5), rel=1e-13)
    assert product_expectation([(MYEXP, 0), (MYEXP, 1)], np.diag([1.0, 1.5])) == pytest.approx(np.exp(1.25),
                                                                                               rel=1e-13)


@pytest.mark.parametrize("name", ["relu", "gelu", "softplus", "silu", "elu", "selu", "leaky_relu", "abs"])
def test_linear_growth_stays_in_range_at_large_variance(name):
    """Every registered activation but exp grows at most linearly: its integrand's peak stays inside the range."""
    v = product_expectation([(name, 0), (name, 0)], np.diag([1e8, 1e8]))
    ref = product_expectation([(name, 0), (name, 0)], np.diag([1e8, 1e8]), nodes=24)
    assert np.isfinite(v) and v == pytest.approx(ref, rel=1e-8)
