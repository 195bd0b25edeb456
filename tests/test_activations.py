"""Activation registry: names, parameters, numeric vs symbolic vs device code, derivatives, errors."""
import math

import numpy as np
import pytest

from sigprop.theory import ACTIVATION_NAMES, activation, custom_activation, polynomial_activation, sympy_activation
from sigprop.theory.activations import device_activation, device_derivative

X = np.linspace(-3.7, 3.3, 29)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_scalar_device_code_matches_numpy(name):
    act = activation(name)
    code, (p0, p1) = act.code, act.device_params
    for x in X:
        assert device_activation(code, x, p0, p1) == pytest.approx(float(act.fn(np.array(x))), rel=1e-12, abs=1e-14)
        assert device_derivative(code, x, p0, p1) == pytest.approx(float(act.deriv(np.array(x))), rel=1e-12, abs=1e-14)
        assert act.scalar(x) == pytest.approx(float(act(x)), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("name", [n for n in ACTIVATION_NAMES if n != "step"])
def test_derivative_matches_finite_difference(name):
    act = activation(name)
    x = X[np.abs(X) > 1e-3]  # away from kinks at 0
    h = 1e-6
    fd = (act.fn(x + h) - act.fn(x - h)) / (2 * h)
    np.testing.assert_allclose(act.deriv(x), fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_sympy_expression_matches_numpy(name):
    import sympy as sp

    act = activation(name)
    x = sp.Symbol("x", real=True)
    f = sp.lambdify(x, act.sympy(x), modules=["mpmath"])
    for v in (-2.5, -0.3, 0.7, 1.9):
        assert float(f(v)) == pytest.approx(float(act(v)), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_declared_parity_holds(name):
    act = activation(name)
    if act.parity == "odd":
        np.testing.assert_allclose(act(-X), -act(X), atol=1e-15)
    elif act.parity == "even":
        np.testing.assert_allclose(act(-X), act(X), atol=1e-15)


def test_parameters_and_aliases():
    a = activation("leaky_relu", slope=-0.3)
    assert a.param_dict == {"slope": -0.3} and a.label == "leaky_relu(slope=-0.3)"
    assert activation("Leaky-ReLU").param_dict == {"slope": 0.01}
    assert activation("linear").name == "identity" and activation("swish").name == "silu"
    assert activation(a) is a
    assert activation("elu", alpha=2.0)(-1.0) == pytest.approx(2.0 * math.expm1(-1.0))
    assert activation("celu", alpha=0.5)(-1.0) == pytest.approx(0.5 * math.expm1(-2.0))


def test_bad_input_is_rejected_clearly():
    with pytest.raises(ValueError, match="unknown name 'foo'.*relu"):
        activation("foo")
    with pytest.raises(TypeError, match="does not take parameter"):
        activation("relu", slope=0.1)
    with pytest.raises(ValueError, match="alpha"):
        activation("elu", alpha=-1.0)
    with pytest.raises(ValueError, match="slope"):
        activation("leaky_relu", slope=float("nan"))
    with pytest.raises(TypeError):
        activation("leaky_relu", slope="big")
    with pytest.raises(TypeError):
        activation(3)
    with pytest.raises(TypeError):
        activation(activation("relu"), slope=1.0)


def test_custom_and_polynomial_and_sympy_activations():
    c = custom_activation(lambda x: np.maximum(x - 0.5, 0.0), kinks=(0.5,), derivative=lambda x: (x > 0.5) * 1.0)
    assert c.kinks == (0.5,) and not c.is_builtin
    p = polynomial_activation([1.0, 1.0, -2.0])
    assert p.parity is None and p(2.0) == pytest.approx(-5.0) and p.derivative(2.0) == pytest.approx(-7.0)
    assert p.scalar(2.0) == pytest.approx(-5.0)
    assert polynomial_activation([1.0, 0.0, -2.0]).parity == "even"
    assert polynomial_activation([0, 1, 0, 3]).parity == "odd"
    s = sympy_activation("x**2 - 1")
    assert s(3.0) == pytest.approx(8.0) and s.derivative(3.0) == pytest.approx(6.0)
    with pytest.raises(ValueError):
        polynomial_activation([0.0, 0.0])
    with pytest.raises(ValueError):
        sympy_activation("x*y")
    with pytest.raises(ValueError):
        custom_activation(np.tanh, parity="sideways")
