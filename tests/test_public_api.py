"""The public names that outside checks use, reachable from the sigprop.* namespace, and small integration points."""
import math
import subprocess
import sys

import numpy as np
import pytest

import sigprop.theory as theory
from sigprop.theory.correlators import vertex_recursion
from sigprop.theory.tangent import forward_kernels


def test_issue6_names_are_exported_from_sigprop_theory():
    from sigprop.theory.equilibrium import equilibrium_layer
    from sigprop.theory.tangent import centered_kernel_alignment

    assert theory.equilibrium_layer is equilibrium_layer
    assert theory.centered_kernel_alignment is centered_kernel_alignment
    assert {"equilibrium_layer", "centered_kernel_alignment"} <= set(theory.__all__)
    with pytest.raises(AttributeError):
        theory.no_such_name  # noqa: B018


def test_theory_import_does_not_load_scipy_stats():
    """The statistics (fit_power_law) live in sigprop.validation.stats; sigprop.theory stays light at start-up."""
    code = "import sys, sigprop.theory; print('scipy.stats' in sys.modules, 'sigprop.validation' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False False"


def test_fit_power_law_lives_in_validation_stats():
    from sigprop.theory import equilibrium as eq
    from sigprop.validation import stats

    assert {"fit_power_law", "PowerLawFit", "theory_exponent"} <= set(stats.__all__)
    assert not hasattr(eq, "fit_power_law") and not hasattr(theory, "fit_power_law")


@pytest.mark.parametrize("scalar", [math.tanh, np.tanh, lambda x: math.tanh(x)])
def test_custom_activation_accepts_builtin_ufunc_and_python_scalars(scalar):
    act = theory.custom_activation(np.tanh, scalar=scalar, scalar_derivative=lambda x: 1.0 - math.tanh(x) ** 2)
    for x in (-2.0, 0.0, 0.7):
        assert act.scalar(x) == pytest.approx(math.tanh(x), abs=1e-15)
        assert act.scalar_deriv(x) == pytest.approx(1.0 - math.tanh(x) ** 2, abs=1e-15)


def test_namespace_packages_resolve_to_the_source_folders():
    import sigprop.kernels
    import sigprop.validation

    for mod, folder in ((theory, "theory"), (sigprop.kernels, "kernels"), (sigprop.validation, "validation")):
        assert mod.__path__[0].rstrip("/").endswith(folder)


def test_device_activations_propagate_nan_like_numpy():
    from sigprop.kernels.device_activations import device_activation
    from sigprop.theory.activations import ACTIVATION_NAMES, activation

    for name in ACTIVATION_NAMES:
        act = activation(name)
        p0, p1 = act.device_params
        dev = device_activation(act.code, math.nan, p0, p1)
        with np.errstate(invalid="ignore"):  # NumPy warns on NaN in some ufuncs (logaddexp); NaN is the point
            ref = float(act(np.array(math.nan)))
        assert math.isnan(dev) == math.isnan(ref), name


def test_dead_relu_layer_under_rms_pre_is_nan_in_every_engine():
    """Layer 1 all dead -> z^(2) = 0 -> RMSNorm 0/0: NaN in the reference, the compiled engine and gram alike."""
    from sigprop.kernels.explicit_cpu import run_explicit
    from sigprop.kernels.reference import run_reference

    kw = dict(X=np.array([[1.0]]), widths=(2, 2), act=theory.activation("relu"), C_W=1.0, C_b=0.0, n_networks=1,
              seed=0, weights="gaussian", residual=0.0, norm="rms_pre", backward=False)
    with np.errstate(all="ignore"):
        got, ref = run_explicit(**kw), run_reference(**kw)
    assert np.all(ref["preact_gram"][0, 1] == 0.0)  # the case really has a dead layer
    assert np.isnan(ref["postact_gram"][0, 1, 0, 0])
    np.testing.assert_array_equal(np.isnan(got["postact_gram"]), np.isnan(ref["postact_gram"]))


def test_as_activation_is_the_one_resolver():
    from sigprop.theory.activations import ACTIVATION_NAMES, Activation, as_activation

    relu = as_activation("relu")
    assert isinstance(relu, Activation) and as_activation(relu) is relu
    assert as_activation("lrelu", slope=0.2).label == "leaky_relu(slope=0.2)"
    with pytest.raises(ValueError, match="unknown name 'nope'; known: " + ", ".join(ACTIVATION_NAMES)):
        as_activation("nope")
    with pytest.raises(TypeError, match="^act must be an activation name"):
        as_activation(3)
    with pytest.raises(TypeError, match="^activation must be an activation name .* got list"):
        as_activation(["relu"], argname="activation")
    with pytest.raises(TypeError, match="given with an Activation object"):
        as_activation(relu, slope=0.1)


@pytest.mark.parametrize("call, argname", [
    (lambda: theory.variance_map(3, 1.0, 2.0), "act"),
    (lambda: theory.hermite_coefficients(3, 4), "act"),
    (lambda: theory.KernelMap(3), "act"),
    (lambda: forward_kernels(3, np.eye(2), 2, 2.0), "act"),
    (lambda: theory.equilibrium_layer(10, 3), "activation"),
    (lambda: vertex_recursion(3, [4], 2.0), "activation"),
])
def test_every_activation_argument_is_resolved_by_as_activation(call, argname):
    """A wrong type is a TypeError that names the caller's argument, from the one resolver."""
    with pytest.raises(TypeError, match=f"^{argname} must be an activation name \\(str\\) or an Activation, got int$"):
        call()


def test_the_old_private_resolvers_are_gone():
    from sigprop.theory import hermite, meanfield, tangent
    from sigprop.theory.correlators import vertex

    assert (not hasattr(meanfield, "_act") and not hasattr(hermite, "_as_activation")
            and not hasattr(tangent, "_resolve"))
    assert "resolve_activation" not in vertex.__all__


@pytest.mark.parametrize("module, old, new", [("sigprop.kernels.learning.rfm", "agop", "predictor_agop"),
                                              ("sigprop.theory.tangent", "layer_alignments", "label_alignments")])
def test_renamed_names_work_for_one_release_with_a_deprecation_warning(module, old, new):
    """One public name per meaning: the old name hands on the new object and warns at the caller's line."""
    import importlib

    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=rf"{module}\.{old} is renamed {module}\.{new}") as caught:
        obj = getattr(mod, old)
    assert obj is getattr(mod, new) and old not in mod.__all__ and new in mod.__all__
    assert caught[0].filename == __file__
    with pytest.raises(AttributeError, match="no attribute"):
        getattr(mod, "not_a_name")
