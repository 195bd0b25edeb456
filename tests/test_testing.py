"""sigprop.validation.testing: the public strategies generate inputs the engines accept, and the statistical
assertions pass on correct data and fail on a mean shifted by 6 standard errors (fixed seeds throughout)."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.kernels import SimulationOverflowWarning, SimulationUnderflowWarning, simulate
from sigprop.theory import ACTIVATION_NAMES, Activation, KernelMap, kernel_recursion
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.validation import testing as T
from sigprop.validation.stats import mean_se

# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


@settings(max_examples=examples(25), deadline=None)
@given(T.activations())
def test_activations_are_accepted_by_the_theory(act):
    assert isinstance(act, Activation) and act.name in ACTIVATION_NAMES
    for name, (lo, hi) in T.PARAMETER_RANGES.get(act.name, {}).items():
        assert lo <= act.param_dict[name] <= hi
    G0 = np.array([[1.0, 0.3], [0.3, 0.8]])
    K = kernel_recursion(act, G0, depth=2, C_W=1.0, C_b=0.1)
    assert K.shape == (2, 2, 2) and np.all(np.isfinite(K))


@settings(max_examples=examples(10), deadline=None)
@given(T.activations(["relu", "leaky_relu", "tanh", "elu"]), T.correlations())
def test_activations_and_correlations_in_kernel_map(act, rho):
    km = KernelMap(act)
    assert -1.0 <= rho <= 1.0
    assert abs(km(1.0) - 1.0) < 1e-12 and abs(km(rho)) <= 1.0 + 1e-12


@settings(max_examples=examples(10), deadline=None)
@given(T.activations(["leaky_relu"], params=False), T.correlations(0.5, 0.75))
def test_activation_defaults_and_correlation_bounds(act, rho):
    assert act.label == "leaky_relu(slope=0.01)"
    assert 0.5 <= rho <= 0.75


@settings(max_examples=examples(30), deadline=None)
@given(st.integers(1, 5).flatmap(lambda P: st.tuples(st.just(P), T.gram_matrices(P, max_condition=1e3))))
def test_gram_matrices_are_well_conditioned_and_accepted(P_G):
    P, G = P_G
    assert G.shape == (P, P) and G.dtype == np.float64
    np.testing.assert_array_equal(G, G.T)
    lam = np.linalg.eigvalsh(G)
    assert lam.min() > 0 and lam.max() / lam.min() <= 1e3 * (1 + 1e-8)
    assert 0.1 * (1 - 1e-12) <= np.trace(G) / P <= 10.0 * (1 + 1e-12)
    K = kernel_recursion("tanh", G, depth=2, C_W=1.5, C_b=0.1)
    assert np.all(np.isfinite(K))


@settings(max_examples=examples(20), deadline=None)
@given(T.gram_matrices(4, min_rank=1, mean_variance=(1.0, 1.0)))
def test_singular_gram_matrices(G):
    lam = np.linalg.eigvalsh(G)
    assert lam.min() >= -1e-12 * lam.max()
    assert np.trace(G) / 4 == pytest.approx(1.0, rel=1e-12)
    assert np.all(np.isfinite(kernel_recursion("relu", G, depth=2, C_W=2.0)))


@settings(max_examples=examples(15), deadline=None)
@given(T.inputs(3, 4), T.activations(["relu", "tanh", "gelu"]))
def test_inputs_are_accepted_by_simulate(X, act):
    assert X.shape == (3, 4) and np.all(np.isfinite(X))
    q = (X**2).sum(axis=1) / 4
    assert np.all((q >= 0.1 * (1 - 1e-12)) & (q <= 10.0 * (1 + 1e-12)))
    res = simulate(X, depth=2, width=6, activation=act, C_W=1.0, n_networks=2, seed=0)
    assert res.preact_gram.shape == (2, 2, 3, 3)


def _run(X, config):
    with warnings.catch_warnings():  # an extreme draw may leave float64's range: still a run simulate accepts
        warnings.simplefilter("ignore", SimulationOverflowWarning)
        warnings.simplefilter("ignore", SimulationUnderflowWarning)
        return simulate(X, **config, n_networks=2, seed=1)


@settings(max_examples=examples(30), deadline=None)
@given(T.inputs(2, 3), T.network_configs(methods=("gram", "explicit", "numpy")))
def test_network_configs_are_accepted_by_simulate(X, config):
    assert set(config) == {"depth", "width", "activation", "C_W", "C_b", "method", "weights", "residual", "norm",
                           "backward"}
    assert len(config["width"]) == config["depth"] and config["activation"].name != "exp"
    if config["method"] == "gram":
        assert config["weights"] == "gaussian"
    res = _run(X, config)
    assert res.preact_gram.shape == (2, config["depth"], 2, 2)
    assert res.widths == config["width"] and res.norm == config["norm"] and res.residual == config["residual"]


@settings(max_examples=examples(10), deadline=None)
@given(T.inputs(2, 3), T.network_configs(activations=["relu", "tanh"], methods=["numpy"], backward=True,
                                         depth=(1, 2), width=(1, 4)))
def test_backward_network_configs(X, config):
    assert config["backward"] and config["residual"] == 0.0 and config["norm"] is None
    res = _run(X, config)
    assert res.backward_gram is not None and res.tangent_gram.shape == (2, config["depth"], 2, 2)


@settings(max_examples=examples(10), deadline=None)
@given(T.network_configs(activations=T.activations(["sin"]), variants=False, width=(1, 1), C_W=(2.0, 2.0)))
def test_network_configs_options(config):
    assert config["residual"] == 0.0 and config["norm"] is None and config["activation"].name == "sin"
    assert set(config["width"]) == {1} and config["C_W"] == 2.0 and 0.0 <= config["C_b"] <= 0.5


def test_strategy_arguments_are_checked():
    with pytest.raises(InputError, match="unknown activation"):
        T.activations(["nosuch"])
    with pytest.raises(InputError, match="at least one"):
        T.activations([])
    with pytest.raises(InputError, match="correlations"):
        T.correlations(-1.5, 0.0)
    with pytest.raises(InputError, match="correlations"):
        T.correlations(0.5, 0.2)
    with pytest.raises(InputError, match="P"):
        T.gram_matrices(0)
    with pytest.raises(InputError, match="max_condition"):
        T.gram_matrices(2, max_condition=0.5)
    with pytest.raises(InputError, match="min_rank"):
        T.gram_matrices(2, min_rank=3)
    with pytest.raises(InputError, match="mean_variance"):
        T.gram_matrices(2, mean_variance=(0.0, 1.0))
    with pytest.raises(InputTypeError, match="n0"):
        T.inputs(2, 1.5)
    with pytest.raises(InputError, match="methods"):
        T.network_configs(methods=["fast"])
    with pytest.raises(InputError, match="backward"):
        T.network_configs(methods=["gram"], backward=True)
    with pytest.raises(InputError, match="C_W"):
        T.network_configs(C_W=(0.0, 1.0))
    with pytest.raises(InputError, match="depth"):
        T.network_configs(depth=(3, 1))


def test_strategies_need_hypothesis_and_the_assertions_do_not(monkeypatch):
    """Without Hypothesis every strategy raises an ImportError naming the test extra; the assertions still work."""
    monkeypatch.setitem(sys.modules, "hypothesis", None)  # `import hypothesis` now raises ImportError
    monkeypatch.setitem(sys.modules, "hypothesis.strategies", None)
    for make in (T.activations, T.correlations, lambda: T.gram_matrices(2), lambda: T.inputs(2, 3),
                 T.network_configs):
        with pytest.raises(ImportError, match=r"pip install 'sigprop\[test\]'"):
            make()
    T.assert_z_within([1.0, 1.1, 0.9], 1.0)


def test_module_imports_without_hypothesis():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import sigprop.validation.testing as T\n"
            "T.assert_z_within([1.0, 1.1, 0.9], 1.0)\n"
            "try:\n    T.correlations()\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'sigprop[test]'" in out.stdout


# --------------------------------------------------------------------------------------------
# assert_z_within
# --------------------------------------------------------------------------------------------
def test_z_within_passes_on_correct_samples_and_fails_on_a_six_se_shift():
    x = np.random.default_rng(1234).normal(0.7, 0.2, size=400)
    m, se = mean_se(x)
    z = T.assert_z_within(x, 0.7)
    assert z == pytest.approx((m - 0.7) / se) and abs(z) < 4
    with pytest.raises(AssertionError) as info:
        T.assert_z_within(x, m + 6 * se)
    msg = str(info.value)
    assert "400 replicates" in msg and "z = -6" in msg and "bound 4" in msg and f"SE {se:.6g}" in msg
    T.assert_z_within(x, m + 6 * se, zmax=6.5)  # a wider bound accepts it


def test_z_within_with_a_given_se_and_arrays():
    est = np.array([[1.0, 2.0], [3.0, 4.0]])
    z = T.assert_z_within(est, est + 0.1, se=0.1)
    np.testing.assert_allclose(z, -1.0)
    with pytest.raises(AssertionError, match=r"2 of 4 entries(.|\n)*index \(0, 1\)(.|\n)*index \(1, 0\)") as info:
        T.assert_z_within(est, [[1.0, 2.6], [2.4, 4.0]], se=0.1, err_msg="layer 3")
    assert "layer 3" in str(info.value)
    assert T.assert_z_within(1.0, 1.0, se=0.0) == 0.0  # a zero SE needs an exact match
    with pytest.raises(AssertionError, match="z = -inf"):
        T.assert_z_within(1.0, 1.0 + 1e-15, se=0.0)


def test_z_within_replicates_along_an_axis():
    g = np.random.default_rng(5)
    x = g.normal([0.0, 1.0, 2.0], 1.0, size=(200, 3)).T  # replicates on axis 1
    T.assert_z_within(x, [0.0, 1.0, 2.0], axis=1)
    m, se = mean_se(x, axis=1)
    with pytest.raises(AssertionError, match=r"1 of 3 entries(.|\n)*index \(2,\)"):
        T.assert_z_within(x, m + np.array([0.0, 0.0, 6.0]) * se, axis=1)


def test_z_within_non_finite_estimates_fail():
    with pytest.raises(AssertionError, match="nan"):
        T.assert_z_within([1.0, np.nan, 1.0], 1.0)
    with pytest.raises(AssertionError):
        T.assert_z_within([np.inf, 1.0], 1.0, se=[0.1, 0.1])


def test_z_within_checks_its_arguments():
    with pytest.raises(InputError, match="at least 2 replicates"):
        T.assert_z_within([1.0], 1.0)
    with pytest.raises(InputError, match="scalar"):
        T.assert_z_within(1.0, 1.0)
    with pytest.raises(InputError, match="se must be"):
        T.assert_z_within(1.0, 1.0, se=-0.1)
    with pytest.raises(InputError, match="expected must be finite"):
        T.assert_z_within([1.0, 2.0], np.nan)
    with pytest.raises(InputError, match="zmax"):
        T.assert_z_within([1.0, 2.0], 1.0, zmax=0.0)
    with pytest.raises(InputTypeError, match="zmax"):
        T.assert_z_within([1.0, 2.0], 1.0, zmax=True)
    with pytest.raises(InputError, match="broadcast"):
        T.assert_z_within([1.0, 2.0], [1.0, 2.0, 3.0], se=0.1)
    with pytest.raises(InputError, match="axis"):
        T.assert_z_within([1.0, 2.0], 1.0, axis=1)


def test_z_within_on_a_simulation():
    """The use the module is for: a mean-field prediction against simulate, network by network."""
    X = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
    res = simulate(X, depth=2, width=512, activation="relu", C_W=2.0, n_networks=64, seed=3)
    K = kernel_recursion("relu", X @ X.T / 4, depth=2, C_W=2.0)
    T.assert_z_within(res.preact_gram[:, -1], K[-1])  # all four entries, O(1/n) bias far below the SE
    with pytest.raises(AssertionError):
        T.assert_z_within(res.preact_gram[:, -1, 0, 1], 1.2 * K[-1, 0, 1])


# --------------------------------------------------------------------------------------------
# assert_extrapolates_to
# --------------------------------------------------------------------------------------------
WIDTHS = np.array([32.0, 64.0, 128.0, 256.0, 512.0])


def _noisy(limit, slope, se, seed, curvature=0.0):
    noise = np.random.default_rng(seed).standard_normal(WIDTHS.size)
    return limit + slope / WIDTHS + curvature / WIDTHS**2 + se * noise


def test_extrapolates_passes_and_fails_on_a_six_se_shift():
    se = np.full(WIDTHS.size, 1e-3)
    y = _noisy(0.5, 2.0, se, seed=7)
    fit = T.assert_extrapolates_to(WIDTHS, y, se, 0.5)
    assert abs(fit.intercept - 0.5) <= 4 * fit.intercept_se and fit.slope == pytest.approx(2.0, abs=0.3)
    with pytest.raises(AssertionError) as info:
        T.assert_extrapolates_to(WIDTHS, y, se, fit.intercept + 6 * fit.intercept_se, err_msg="relu c_12")
    msg = str(info.value)
    assert "z = -6" in msg and "zmax = 4" in msg and "relu c_12" in msg and "n = 512" in msg


def test_extrapolates_order_two():
    se = np.full(WIDTHS.size, 1e-4)
    y = _noisy(1.0, -3.0, se, seed=11, curvature=40.0)
    fit = T.assert_extrapolates_to(WIDTHS, y, se, 1.0, order=2)
    assert fit.beta.size == 3
    with pytest.raises(AssertionError):
        T.assert_extrapolates_to(WIDTHS, y, se, fit.intercept - 6 * fit.intercept_se, order=2)


def test_extrapolates_checks_its_arguments():
    se = np.full(WIDTHS.size, 1e-3)
    y = _noisy(0.5, 2.0, se, seed=7)
    with pytest.raises(AssertionError, match="finite"):
        T.assert_extrapolates_to(WIDTHS, np.where(WIDTHS == 64, np.nan, y), se, 0.5)
    with pytest.raises(InputError, match="expected"):
        T.assert_extrapolates_to(WIDTHS, y, se, np.inf)
    with pytest.raises(InputError, match="order"):
        T.assert_extrapolates_to(WIDTHS, y, se, 0.5, order=3)
    with pytest.raises(InputError, match="se must be positive"):
        T.assert_extrapolates_to(WIDTHS, y, np.zeros(WIDTHS.size), 0.5)
    with pytest.raises(InputError, match="equal length"):
        T.assert_extrapolates_to(WIDTHS, y[:3], se, 0.5)
    with pytest.raises(InputError, match="zmax"):
        T.assert_extrapolates_to(WIDTHS, y, se, 0.5, zmax=-1.0)
