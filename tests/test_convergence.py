"""Convergence cases of the kernel sequence (docs/derivations.md, section 1) and their bounds."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.theory import KernelMap, activation, kernel_map, polynomial_activation
from sigprop.theory.convergence import KAPPA0_TOL, KAPPA_PRIME1_TOL

CASES = {
    "tanh": 1, "erf": 1, "sin": 1, "selu": 1,
    "sigmoid": 2, "softplus": 2, "cos": 2,
    "relu": 3, "abs": 3, "exp": 3, "leaky_relu": 3,
    "gelu": 4, "elu": 4, "celu": 4, "silu": 4, "gelu_tanh": 4, "step": 4,
}
MAPS = {name: KernelMap(name) for name in CASES}


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_of_each_activation(name):
    conv = MAPS[name].convergence()
    assert conv.case == CASES[name]
    assert MAPS[name].convergence() is conv  # cached, frozen
    with pytest.raises(AttributeError):
        conv.case = 2


@pytest.mark.parametrize("slope", [-2.0, -1.0, -0.5, 0.0, 0.01, 0.2, 0.9, 1.5, 3.0])
def test_every_leaky_relu_is_case_3(slope):
    km = KernelMap(activation("leaky_relu", slope=slope))
    assert km.kappa_prime1 == pytest.approx(1.0, abs=1e-15)
    conv = km.convergence()
    assert conv.case == 3 and conv.rho_star == 1.0
    assert conv.rate == pytest.approx(1 - km.kappa0 - km.kappa_prime0, abs=1e-15)


def test_linear_activation_is_rejected():
    for act in ("identity", polynomial_activation([0.0, -2.0])):
        with pytest.raises(ValueError, match="linear"):
            KernelMap(act).convergence()


def test_tolerances_are_explicit():
    assert KAPPA0_TOL == 1e-12 and KAPPA_PRIME1_TOL == 1e-9


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixed_point_and_rate_formulas(name):
    km = MAPS[name]
    c = km.convergence()
    assert km(c.rho_star) == pytest.approx(c.rho_star, abs=1e-13)
    if c.case == 1:
        assert c.rho_star == 0.0 and c.rate == pytest.approx(1 / (2 - km.kappa_prime0))
    elif c.case == 2:
        assert c.rho_star == 1.0 and c.rate == km.kappa_prime1 < 1
    elif c.case == 3:
        assert c.rho_star == 1.0 and c.rate == pytest.approx(1 - km.kappa0 - km.kappa_prime0)
    else:
        assert 0 < c.rho_star < 1
        kps = km.derivative(c.rho_star)
        assert kps < 1 and c.kappa_prime_star == pytest.approx(kps)
        # the theorem's (2 - kappa'(rho*)), not the proof's (1 - kappa'(rho*))
        assert c.rate == pytest.approx(max(1 - km.kappa0, kps, (1 - c.rho_star) / (2 - kps)), rel=1e-15)
        assert c.rate < 1


def test_exp_fixed_point_is_exactly_one_not_last_iterate():
    c = MAPS["exp"].convergence()
    assert c.rho_star == 1.0
    seq = MAPS["exp"].sequence(0.0, 400)
    assert 0.99 < seq[-1] < 0.996  # the slow case-3 iteration is still far from 1 here


@settings(max_examples=examples(25), deadline=None)
@given(st.sampled_from(sorted(CASES)), st.floats(-0.999, 0.999))
def test_sequence_obeys_bound_for_every_layer(name, rho0):
    km = MAPS[name]
    conv = km.convergence()
    depth = 60
    seq = km.sequence(rho0, depth)
    assert seq.shape == (depth + 1,) and seq[0] == rho0
    l = np.arange(depth + 1)
    assert np.all(np.abs(seq - conv.rho_star) <= conv.bound(l, rho0) * (1 + 1e-9) + 1e-12)
    if conv.case == 1:
        q = np.abs(seq) / (1 - np.abs(seq))
        assert np.all(q <= conv.raw_bound(l, rho0) * (1 + 1e-9) + 1e-12)


def test_bound_is_vectorised_and_checks_input():
    conv = MAPS["gelu"].convergence()
    b = conv.bound(np.arange(5), 0.3)
    assert b.shape == (5,) and np.all(np.diff(b) <= 0)
    assert conv.bound(np.arange(4)[:, None], np.array([0.1, 0.5])).shape == (4, 2)
    with pytest.raises(ValueError):
        conv.bound(3, 1.5)
    with pytest.raises(ValueError):
        conv.bound(-1, 0.5)


def test_relu_polynomial_convergence_rate():
    """1 - rho_l ~ 9 pi^2 / (2 l^2) for relu (case 3: polynomial, not geometric)."""
    seq = MAPS["relu"].sequence(0.0, 10000)
    c = 9 * math.pi**2 / 2
    assert (1 - seq[10000]) * 10000**2 == pytest.approx(c, rel=0.01)
    assert (1 - seq[1000]) * 1000**2 == pytest.approx(c, rel=0.04)
    # the case-3 bound holds but is not geometric
    conv = MAPS["relu"].convergence()
    assert np.all(1 - seq[:200] <= conv.bound(np.arange(200), 0.0) + 1e-15)


def test_variants_classify():
    assert kernel_map("relu", norm="ln_post").convergence().case == 1
    assert kernel_map("relu", residual=0.5).convergence().case == 3
    assert kernel_map("sigmoid", residual=0.5).convergence().case == 2


def test_sequence_input_checks():
    km = MAPS["relu"]
    assert km.sequence(np.array([0.1, -0.2]), 3).shape == (4, 2)
    assert km.sequence(0.4, 0).tolist() == [0.4]
    with pytest.raises(ValueError):
        km.sequence(1.2, 3)
    with pytest.raises(ValueError):
        km.sequence(float("nan"), 3)
    with pytest.raises(ValueError):
        km.sequence(0.1, -1)
