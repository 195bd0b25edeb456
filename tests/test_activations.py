"""Activation registry: names, parameters, numeric vs symbolic vs device code, derivatives, errors."""
import math

import numpy as np
import pytest

from sigprop.kernels.device_activations import device_activation, device_derivative
from sigprop.theory import ACTIVATION_NAMES, activation, custom_activation, polynomial_activation, sympy_activation

X = np.linspace(-3.7, 3.3, 29)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_scalar_device_code_matches_numpy(name):
    act = activation(name)
    code, (p0, p1) = act.code, act.device_params
    for x in X:
        assert device_activation(code, x, p0, p1) == pytest.approx(float(act.fn(np.array(x))), rel=1e-12, abs=1e-14)
        assert device_derivative(code, x, p0, p1) == pytest.approx(float(act.deriv(np.array(x))), rel=1e-12, abs=1e-14)
        assert act.scalar(x) == pytest.approx(float(act(x)), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_numpy_and_device_derivatives_agree_exactly_at_kinks(name):
    """At a kink both take the left one-sided slope (the convention of device_derivative): abs'(0) = -1, not
    np.sign(0) = 0, else the explicit engine and the NumPy reference disagree on an exactly-zero pre-activation."""
    act = activation(name)
    code, (p0, p1) = act.code, act.device_params
    for k in act.kinks:
        assert device_derivative(code, k, p0, p1) == float(act.deriv(np.array(k)))


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


# --- claimed parity is verified (custom_activation(relu, parity='odd') gave kappa(0.5) = 1.051 > 1) --------


@pytest.mark.parametrize("fn, parity, where", [
    (lambda x: np.maximum(x, 0.0), "odd", "1e-06"),  # relu: phi(-x) = 0, not -phi(x), already at tiny x
    (lambda x: np.maximum(x, 0.0), "even", "1e-06"),
    (np.cos, "odd", "1e-06"),
    (np.tanh, "even", "1e-06"),
    (lambda x: x**3 + 1e-3 * x**2, "odd", "0.001"),  # odd up to a small even part: seen at |x| >= 1e-3
    (lambda x: np.abs(x) + np.where(np.abs(x) > 20, x, 0.0), "even", "30"),  # differs only at large |x|
])
def test_false_parity_claim_is_rejected_naming_parity_and_the_point(fn, parity, where):
    with pytest.raises(ValueError, match=rf"parity='{parity}'.* at x = {where}:"):
        custom_activation(fn, parity=parity)


def test_relu_claimed_odd_is_rejected_not_trusted():
    """The issue's example: accepted before, and the kernel map then used the odd-parity shortcut (kappa > 1)."""
    with pytest.raises(ValueError, match="parity='odd'"):
        custom_activation(lambda x: np.maximum(x, 0.0), kinks=(0.0,), parity="odd")


@pytest.mark.parametrize("fn, parity", [
    (np.tanh, "odd"), (np.sin, "odd"), (lambda x: x**3 - 2 * x, "odd"), (np.cos, "even"), (np.abs, "even"),
    (lambda x: 1.0 / (1.0 + np.exp(-x)) - 0.5, "odd"),  # odd only up to rounding: within the tolerance
    (lambda x: np.exp(x * x), "even"),  # inf at x = 30 on both sides: equal infinities are equal
])
def test_true_parity_claims_are_accepted(fn, parity):
    assert custom_activation(fn, parity=parity).parity == parity


def test_nan_breaks_a_parity_claim():
    with pytest.raises(ValueError, match="parity='odd'.*at x = 30"):
        custom_activation(lambda x: np.where(np.abs(x) > 20, np.nan, x), parity="odd")


# --- the numba scalar is compiled when the activation is made, not 27 s into a run ---------------------------------


def test_scalar_is_compiled_at_creation_for_float64():
    import numba

    act = custom_activation(lambda x: np.tanh(x) + 0.1 * x, scalar=lambda x: math.tanh(x) + 0.1 * x,
                            scalar_derivative=lambda x: 1.0 - math.tanh(x) ** 2 + 0.1)
    assert (numba.types.float64,) in act.scalar.overloads
    assert (numba.types.float64,) in act.scalar_deriv.overloads
    default = custom_activation(lambda x: np.maximum(x - 0.5, 0.0), kinks=(0.5,))
    assert (numba.types.float64,) in default.scalar.overloads and default.scalar(1.5) == 1.0


def test_uncompilable_scalar_is_rejected_naming_scalar():
    from scipy import special

    with pytest.raises(ValueError, match=r"scalar= must be a scalar function numba can compile.*ufunc 'erf'"):
        custom_activation(special.erf, scalar=special.erf)
    with pytest.raises(ValueError, match=r"scalar= must be .*numba says: .*\S"):
        custom_activation(np.tanh, scalar=lambda x: special.erf(x) + undefined_name)  # noqa: F821
    with pytest.raises(ValueError, match=r"scalar_derivative= must be .*numba says"):
        custom_activation(np.tanh, scalar=math.tanh, scalar_derivative=special.erf)


def test_scalar_returning_an_array_is_rejected():
    with pytest.raises(ValueError, match=r"scalar= must return a real number.*array"):
        custom_activation(lambda x: np.maximum(x, 0.0), scalar=lambda x: np.where(x > 0, x, 0.0))


def test_uncompilable_default_scalar_keeps_the_theory_and_simulate_refuses_before_work(monkeypatch):
    """fn itself need not compile (the theory does not use the scalar); simulate then refuses it up front."""
    import importlib

    from scipy import special

    sim_mod = importlib.import_module("sigprop.kernels.simulate")
    act = custom_activation(special.erf, parity="odd")
    assert act.scalar is None and act.parity == "odd"
    assert act(0.5) == special.erf(0.5) and act.derivative(0.0) == pytest.approx(2 / math.sqrt(math.pi), rel=1e-9)
    monkeypatch.setattr(sim_mod, "_run_batch", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(TypeError, match="needs a numba scalar"):
        sim_mod.simulate(np.ones((1, 3)), depth=1, width=4, activation=act, C_W=1.0, n_networks=2)


# --------------------------------------------------------------------------------------------
# The registry: one entry per activation, the device switch generated from it
# --------------------------------------------------------------------------------------------
def test_registry_codes_are_the_compiled_ones():
    """Integer codes are compiled into kernels: they must never change."""
    from sigprop.kernels.device_activations import CODES
    from sigprop.theory.activation_registry import REGISTRY, check_registry

    check_registry(REGISTRY)
    assert CODES == {
        "identity": 0, "relu": 1, "leaky_relu": 2, "abs": 3, "tanh": 4, "erf": 5, "sigmoid": 6,
        "gelu": 7, "gelu_tanh": 8, "elu": 9, "celu": 10, "selu": 11, "softplus": 12, "silu": 13,
        "exp": 14, "sin": 15, "cos": 16, "step": 17,
    }
    assert ACTIVATION_NAMES == tuple(CODES)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_device_switch_is_the_registry_formula_bit_for_bit(name):
    """The generated switch and the activation's numba scalars agree bit for bit, and with the entry's
    plain-Python formula exactly (a NaN's sign bit aside), so the engines compute the registry's arithmetic."""
    params = {"leaky_relu": {"slope": 0.3}, "elu": {"alpha": 0.7}, "celu": {"alpha": 1.9}}.get(name, {})
    act = activation(name, **params)
    e = act.entry
    assert e is not None and e.name == name and e.code == act.code
    p0, p1 = act.device_params
    xs = [*X, 0.0, -0.0, 1e-300, 40.0, -40.0, 700.0, -750.0, math.inf, -math.inf, math.nan]
    for x in xs:
        for dev, scalar, formula in ((device_activation, act.scalar, e.scalar),
                                     (device_derivative, act.scalar_deriv, e.scalar_deriv)):
            try:
                ref = formula(x, p0, p1)
            except (OverflowError, ValueError):  # Python's math raises where numba returns inf/nan
                ref = dev(act.code, x, p0, p1)
            d, s = np.array([dev(act.code, x, p0, p1)]), np.array([scalar(x)])
            assert d.view(np.uint64)[0] == s.view(np.uint64)[0], (name, x, d, s)
            assert d[0] == ref or (math.isnan(d[0]) and math.isnan(ref)), (name, x, d, ref)


def test_registry_rejects_a_bad_entry():
    from sigprop.theory.activation_registry import REGISTRY, ActivationEntry, Param, check_registry

    def bad(**kw):
        base = dict(name="new", code=len(REGISTRY), fn=np.abs, deriv=np.sign, sympy=abs,
                    scalar=lambda x, p0, p1: abs(x), scalar_deriv=lambda x, p0, p1: 1.0)
        return REGISTRY + (ActivationEntry(**{**base, **kw}),)

    check_registry(bad())
    with pytest.raises(ValueError, match="expected 18"):
        check_registry(bad(code=3))
    with pytest.raises(ValueError, match="'relu' is used twice"):
        check_registry(bad(name="relu"))
    with pytest.raises(ValueError, match="at most two"):
        check_registry(bad(params=(Param("a", 1.0), Param("b", 1.0), Param("c", 1.0))))
    with pytest.raises(ValueError, match="default"):
        check_registry(bad(params=(Param("a", 0.0, 0.0),)))
    with pytest.raises(ValueError, match="jumps"):
        check_registry(bad(jumps=(0.0,)))


def test_activation_from_entry_checks_parameters_like_activation():
    from sigprop.theory.activations import activation_from_entry

    entry = activation("celu").entry
    assert activation_from_entry(entry, alpha=2.0) == activation("celu", alpha=2.0)
    with pytest.raises(ValueError, match=r"alpha=-1.0 must be finite and in \(0.0, inf\)"):
        activation_from_entry(entry, alpha=-1.0)
    with pytest.raises(TypeError, match="does not take parameter"):
        activation_from_entry(entry, slope=1.0)


def test_cached_kernels_that_inline_the_switch_carry_its_fingerprint():
    """numba's disk cache is keyed by the kernel's own file and name; the CPU kernels that inline the activation
    switch are named with a fingerprint of the registry's source, so a changed entry cannot be served stale."""
    from sigprop.kernels import explicit_cpu, gram_cpu
    from sigprop.kernels.device_activations import SWITCH_FINGERPRINT, switch_fingerprint

    assert SWITCH_FINGERPRINT == switch_fingerprint() and len(SWITCH_FINGERPRINT) == 12
    assert gram_cpu._gram_kernel_builtin.py_func.__qualname__.endswith(SWITCH_FINGERPRINT)
    assert explicit_cpu._k_act_builtin.py_func.__qualname__.endswith(SWITCH_FINGERPRINT)
    assert switch_fingerprint(("entry", "x")) != switch_fingerprint(("entry", "y"))
    assert switch_fingerprint(("ab", "c")) != switch_fingerprint(("a", "bc"))  # sources are separated
