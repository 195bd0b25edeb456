"""product_expectation: Gaussian expectations of products of up to four activations or their derivatives.

References: Isserlis, the arc-cosine kernels (sigprop.theory.tangent.pair_expectations), the erf arcsine kernel,
the 3-D orthant probability, E[Phi(xi)^4] = 1/5, the polar 2-D rule, Stein's lemma and a doubled rule.
"""
import math

import numpy as np
import pytest

from sigprop.theory.activations import activation
from sigprop.theory.correlators.multi_input import expect2_polar
from sigprop.theory.errors import InputError
from sigprop.theory.gaussian_products import product_expectation
from sigprop.theory.tangent import pair_expectations

K2 = np.array([[1.0, 0.5], [0.5, 2.0]])
R3 = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.5], [-0.2, 0.5, 1.0]])
K4 = 1.5 * np.array([[1, .3, -.2, .1], [.3, 1, .5, .2], [-.2, .5, 1., .3], [.1, .2, .3, 1]])


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "abs", "tanh", "erf", "gelu", "silu", "sigmoid", "elu",
                                  "gelu_tanh", "sin"])
@pytest.mark.parametrize("scale", [0.1, 1.0, 4.0])
def test_pairs_match_existing_two_point_code(name, scale):
    phi = activation(name)
    ref, dref = pair_expectations(phi, scale * K2)
    v = product_expectation([(name, 0), (name, 0)], scale * K2)
    d = product_expectation([(name, 1), (name, 1)], scale * K2)
    assert abs(v - ref[0, 1]) <= 1e-11 * abs(ref[0, 1])
    assert abs(d - dref[0, 1]) <= 1e-11 * abs(dref[0, 1])


def test_erf_arcsine_kernel():
    K = np.array([[2.0, -0.7], [-0.7, 0.8]])
    ref = 2 / math.pi * math.asin(2 * K[0, 1] / math.sqrt((1 + 2 * K[0, 0]) * (1 + 2 * K[1, 1])))
    assert abs(product_expectation([("erf", 0), ("erf", 0)], K) - ref) < 1e-14


def test_isserlis_and_singular_polynomials():
    K = K4
    v = product_expectation([("identity", 0)] * 4, K)
    assert v == pytest.approx(K[0, 1] * K[2, 3] + K[0, 2] * K[1, 3] + K[0, 3] * K[1, 2], rel=1e-15)
    assert product_expectation([("identity", 0)] * 4, np.full((4, 4), 2.0)) == pytest.approx(12.0, rel=1e-15)
    assert product_expectation([("identity", 0), ("identity", 1), ("identity", 0)], K[:3, :3]) == K[0, 2]


def test_orthant_probabilities():
    ex3 = 1 / 8 + (math.asin(0.3) + math.asin(-0.2) + math.asin(0.5)) / (4 * math.pi)
    assert abs(product_expectation([("step", 0)] * 3, R3) - ex3) < 1e-14
    R4 = np.full((4, 4), 0.5) + 0.5 * np.eye(4)  # z_i = (xi_0 + xi_i)/sqrt 2: P(all > 0) = E[Phi(xi)^4] = 1/5
    assert abs(product_expectation([("step", 0)] * 4, R4) - 0.2) < 1e-14


def test_singular_kernels_repeated_and_zero_variance():
    k = 1.7
    # rank one: E[relu(z)^4] = 3 k^2 / 2, E[relu'(z) z^2] = k / 2
    assert product_expectation([("relu", 0)] * 4, np.full((4, 4), k)) == pytest.approx(1.5 * k * k, rel=1e-13)
    assert product_expectation([("relu", 1), ("identity", 0), ("identity", 0)], np.full((3, 3), k)) == \
        pytest.approx(k / 2, rel=1e-13)
    # repeated input: <relu_a relu_a relu_b relu_b> with a 4x4 kernel of rank 2 equals the 2-variable integral of
    # relu(u)^2 relu(v)^2 (the polar rule of multi_input, ~1e-13)
    Ks = K2[np.ix_([0, 0, 1, 1], [0, 0, 1, 1])]
    ref = expect2_polar(lambda x, y: np.maximum(x, 0) ** 2 * np.maximum(y, 0) ** 2, K2)
    assert product_expectation([("relu", 0)] * 4, Ks) == pytest.approx(ref, rel=1e-12)
    # zero variance: the factor is its value at 0
    Kz = np.array([[1.3, 0.0], [0.0, 0.0]])
    assert product_expectation([("relu", 0), ("cos", 0)], Kz) == pytest.approx(math.sqrt(1.3 / (2 * math.pi)),
                                                                                 rel=1e-14)


def test_three_point_tanh_doubled_rule():
    # an even product (odd products vanish): E[tanh'(u) tanh(v) tanh(w)]
    K = 0.8 * R3 + 0.2 * np.eye(3)
    v = product_expectation([("tanh", 1), ("tanh", 0), ("tanh", 0)], K)
    w = product_expectation([("tanh", 1), ("tanh", 0), ("tanh", 0)], K, nodes=24)
    assert abs(v - w) < 1e-12 * abs(w)


@pytest.mark.parametrize("name", ["relu", "gelu", "erf"])
def test_four_point_doubled_rule(name):
    fac = [(name, 0), (name, 0), (name, 1), (name, 1)]  # even in z: not zero by symmetry for odd phi
    v = product_expectation(fac, K4)
    w = product_expectation(fac, K4, nodes=20)
    assert abs(v - w) < 1e-12 * abs(w)


def test_second_derivative_smooth():
    # <tanh''(u)> = -2 <tanh tanh'>, and Stein: E[u f(u)] = K E[f'(u)]
    K = np.array([[1.4]])
    assert product_expectation([("tanh", 2)], K) == pytest.approx(0.0, abs=1e-15)
    Kd = np.full((2, 2), 1.4)
    lhs = product_expectation([("identity", 0), ("gelu", 1)], Kd)
    assert lhs == pytest.approx(1.4 * product_expectation([("gelu", 2)], K), rel=1e-12)


@pytest.mark.parametrize("factors, K, match", [
    ([], np.eye(1), "1 to 4"),
    ([("relu", 0)] * 5, np.eye(5), "1 to 4"),
    ([("relu", 3)], np.eye(1), r"factors\[0\]\[1\]"),
    ([("step", 1)], np.eye(1), "delta"),
    ([("relu", 2)], np.eye(1), "kinks"),
    ([("nope", 0)], np.eye(1), "unknown name"),
    ([("relu", 0)] * 2, np.eye(3), r"\(2, 2\)"),
    ([("relu", 0)] * 2, np.array([[1.0, 2.0], [2.0, 1.0]]), "positive semi-definite"),
    ([("relu", 0)] * 2, np.array([[1.0, 0.2], [0.1, 1.0]]), "symmetric"),
    ([("relu", 0)], np.array([[np.nan]]), "finite"),
])
def test_bad_input(factors, K, match):
    with pytest.raises(InputError, match=match):
        product_expectation(factors, K)
