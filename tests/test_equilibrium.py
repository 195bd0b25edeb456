"""The equilibrium layer l*(L): gap-parametrised correlation map, definition, asymptotics, fits, bad input."""
import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.theory.activations import activation
from sigprop.theory.equilibrium import (
    asymptotic_equilibrium_layer,
    correlation_gaps,
    equilibrium_imbalance,
    equilibrium_layer,
    equilibrium_layers,
    equilibrium_position,
    equilibrium_window,
    homogeneous_lambda,
    relu_gap_map,
)
from sigprop.validation.stats import theory_exponent


def _gap_map_mp(e, a_plus=1.0, a_minus=0.0):
    """1 - kappa(1 - e) from the closed form for a min(x,0) + b max(x,0) (docs/derivations.md, section 1),
    normalised, at 50 digits."""
    with mp.workdps(50):
        c = 1 - mp.mpf(e)
        a, b = mp.mpf(a_minus), mp.mpf(a_plus)
        k = ((a - b) ** 2 / (2 * mp.pi) * mp.sqrt(1 - c * c)
             + ((a * a + b * b) / 2 - (a - b) ** 2 / (2 * mp.pi) * mp.acos(c)) * c)
        k /= (a * a + b * b) / 2
        return 1 - k


@pytest.mark.parametrize("e", [1e-14, 1e-9, 1e-5, 4e-3, 5e-3, 5.1e-3, 0.1, 0.7, 1.0, 1.5, 2.0])
@pytest.mark.parametrize("slopes", [(1.0, 0.0), (1.0, 0.2), (1.0, -1.0)])
def test_gap_map_matches_closed_form_to_relative_precision(e, slopes):
    lam = (slopes[0] - slopes[1]) ** 2 / (slopes[0] ** 2 + slopes[1] ** 2)
    exact = _gap_map_mp(e, *slopes)
    got = relu_gap_map(e, lam)
    assert abs(got - float(exact)) <= 1e-14 * float(abs(exact)) + 1e-15 * (e == 2.0)  # abs maps c = -1 to 1


def test_gap_decay_matches_asymptote():
    gaps, log_slopes = correlation_gaps(10 ** 5)
    l = np.array([10 ** 3, 10 ** 4, 10 ** 5])
    ratio = gaps[l] * l ** 2 / (9 * math.pi ** 2 / 2)
    assert np.all(np.abs(ratio - 1) < 6 * np.log(l) / l)  # corrections are O(log l / l)
    # kappa'(c_l) = 1 - theta/pi ~ 1 - 3/l
    assert np.allclose(-np.expm1(log_slopes[l]) * l, 3.0, rtol=40 / l.min())


def test_definition_small_depth_by_hand():
    """L = 10 from a plain float recursion in c (accurate away from c = 1) against the gap code."""
    L = 10
    c = [0.0]
    for _ in range(L):
        x = c[-1]
        c.append((math.sqrt(1 - x * x) + (math.pi - math.acos(x)) * x) / math.pi)
    slopes = [1 - math.acos(x) / math.pi for x in c]
    expected = next(l for l in range(L + 1) if 1 - c[l] <= math.prod(slopes[l:L]))
    assert equilibrium_layer(L) == expected
    # the crossing is unique: the imbalance is non-increasing
    gaps, ls = correlation_gaps(L)
    d = equilibrium_imbalance(gaps, ls, L)
    assert np.all(np.diff(d) <= 1e-12)


def test_exponent_tends_to_three_fifths():
    late = theory_exponent(10 ** 5, 10 ** 6)
    assert abs(late.exponent - 0.6) < 0.01
    early = theory_exponent(10, 100)
    assert early.exponent > late.exponent + 0.05  # slow approach from above, a finite-L effect
    ratio = equilibrium_position(10 ** 6) / asymptotic_equilibrium_layer(10 ** 6)
    assert abs(ratio - 1) < 0.01


def test_large_depth_runs_and_is_consistent():
    l6 = equilibrium_layer(10 ** 6)
    assert abs(l6 - asymptotic_equilibrium_layer(10 ** 6)) / l6 < 0.01
    ls = equilibrium_layers([20, 50, 100, 200])
    assert list(ls) == [equilibrium_layer(L) for L in (20, 50, 100, 200)]
    assert np.all(np.diff(ls) > 0)


@settings(max_examples=examples(25), deadline=None)
@given(L=st.integers(2, 3000), rho0=st.floats(-1.0, 0.999))
def test_equilibrium_layer_in_range_and_matches_position(L, rho0):
    l = equilibrium_layer(L, "relu", rho0)
    assert 0 <= l <= L
    pos = equilibrium_position(L, "relu", rho0)
    assert l - 1 <= pos <= l + 1e-12


def test_other_homogeneous_activations():
    assert homogeneous_lambda("relu") == 1.0
    assert homogeneous_lambda(activation("abs")) == 2.0
    l_relu = equilibrium_layer(1000, "relu")
    l_leaky = equilibrium_layer(1000, activation("leaky_relu", slope=0.2))
    assert l_leaky > l_relu  # weaker nonlinearity, slower forward decay, later equilibrium


def test_equilibrium_window_is_the_data_theory_exponent_fits():
    L, l = equilibrium_window(10, 100)
    assert L.dtype.kind == "i" and L[0] == 10 and L[-1] == 100 and np.all(np.diff(L) > 0)
    np.testing.assert_array_equal(l, equilibrium_layers(list(L), continuous=True))
    Li, li = equilibrium_window(10, 100, depths=[10, 20, 40], continuous=False)
    assert Li.tolist() == [10, 20, 40] and li.tolist() == [equilibrium_layer(d) for d in (10, 20, 40)]
    with pytest.raises(ValueError, match="depth_max"):
        equilibrium_window(100, 100)
    with pytest.raises(TypeError, match="depth_min"):
        equilibrium_window(2.5, 100)


@pytest.mark.parametrize("bad, exc", [(1, ValueError), (0, ValueError), (-5, ValueError), (2.5, TypeError),
                                      (True, TypeError)])
def test_bad_depth(bad, exc):
    with pytest.raises(exc, match="depth"):
        equilibrium_layer(bad)


def test_bad_activation_and_rho0():
    with pytest.raises(ValueError, match="no critical point"):
        equilibrium_layer(10, "tanh")
    with pytest.raises(ValueError, match="linear"):
        equilibrium_layer(10, "identity")
    with pytest.raises(ValueError, match="rho0"):
        equilibrium_layer(10, "relu", 1.0)
    with pytest.raises(ValueError, match="rho0"):
        equilibrium_layer(10, "relu", float("nan"))


def test_cli(capsys):
    import json

    from sigprop.validation.cli import main

    assert main(["equilibrium", "--depth", "100", "--depths", "10:40:10", "--window", "50", "200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["depth"]["l_star"] == equilibrium_layer(100)
    assert [r["l_star"] for r in out["depths"]["rows"]] == list(equilibrium_layers([10, 20, 30, 40]))
    assert out["window"]["exponent"] == pytest.approx(theory_exponent(50, 200).exponent)
    assert main(["equilibrium", "--depth", "1"]) == 2
    assert main(["equilibrium", "--depths", "10:x"]) == 2
    assert "depth must be" in capsys.readouterr().err


def test_experiment_smoke(tmp_path):
    """The validation experiment runs end to end on its smoke profile and reports every comparison."""
    from sigprop.validation.experiment import Context
    from sigprop.validation.experiments.equilibrium import EXPERIMENT

    assert EXPERIMENT.name == "equilibrium" and EXPERIMENT.order == 60
    res = EXPERIMENT.run(Context(profile="smoke", out_dir=tmp_path), EXPERIMENT.settings("smoke"))
    kinds = {c.kind for c in res.checks}
    assert kinds == {"z", "exact", "info"}
    assert all(c.passed(5.0) for c in res.checks if c.kind == "exact")
    assert all(np.isfinite(c.z) for c in res.checks if c.kind == "z")
    names = " ".join(c.name for c in res.checks)
    for part in ("vs asymptotic 3/5", "theory's finite-L exponent", "finite-width init exponent"):
        assert part in names
    assert len(res.figures) == 3 and all((tmp_path / "figures").joinpath(p.split("/")[-1]).exists()
                                         for _, p in res.figures)
    with pytest.raises(ValueError, match="profile"):
        EXPERIMENT.settings("huge")


def test_experiment_learning_rate_rule():
    """lr = lr_base (lr_ref_depth / L)^power: power 1 is the ~1/L rule, power 0 (quick) one lr for all L; full uses
    the reference code's rate per depth."""
    from sigprop.validation.experiments.equilibrium import learning_rate, settings

    s = {"lr_base": 0.006, "lr_ref_depth": 10, "lr_depth_power": 1.0}
    assert learning_rate(s, 10) == pytest.approx(0.006) and learning_rate(s, 100) == pytest.approx(0.0006)
    assert learning_rate({**s, "lr_depth_power": 0.5}, 40) == pytest.approx(0.003)
    quick = settings("quick")
    assert quick["lr_depth_power"] == 0.0 and quick["clip_norm"] > 0
    assert learning_rate(quick, 100) == pytest.approx(quick["lr_base"])
    # full: the reference code's table per depth (bugbuglou/NTK_alignment, fmnist_FNNs_MC5.py), no clipping
    full = settings("full")
    assert full["depths"] == list(range(10, 101, 10)) and full["seeds"] == 3 and full["width"] == 256
    assert full["clip_norm"] is None and full["weight_decay"] == 0.0 and full["batch_size"] == 128
    assert [learning_rate(full, L) for L in full["depths"]] == [0.005, 0.004, 0.004, 0.002, 0.001, 0.0007, 0.0005,
                                                                0.0002, 0.0001, 0.0001]


@pytest.mark.parametrize("rho0", [-1.0, -0.5, 0.0, 0.5])
def test_abs_negative_slopes_are_handled(rho0):
    """abs has kappa'(c) < 0 for c < 0: the backward factor's size |kappa'| enters, never a NaN."""
    gaps, ls = correlation_gaps(50, "abs", rho0)
    assert np.all(np.isfinite(ls[1:])) and np.all(gaps >= 0)
    assert 0 <= equilibrium_layer(50, "abs", rho0) <= 50
