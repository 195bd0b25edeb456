"""sigprop.theory: exact and symbolic results for wide random networks, with no sampling.

Activations, Hermite coefficients, normalised kernel maps and their convergence cases, residual and
normalisation variants, the mean-field recursions with C_W, C_b (``sigprop.theory.meanfield``), finite-width
correlators (``sigprop.theory.correlators``), tangent kernels (``sigprop.theory.tangent``) and the
equilibrium layer (``sigprop.theory.equilibrium``).
"""
from .activations import ACTIVATION_NAMES, Activation, activation, custom_activation
from .convergence import Convergence
from .hermite import hermite_coefficients
from .kernel_map import KernelMap, KernelMapBase
from .meanfield import (
    CriticalPoint,
    chi_parallel,
    chi_perp,
    correlation_map,
    critical_line,
    critical_point,
    fixed_point_variance,
    gaussian_expectation,
    gaussian_pair_expectation,
    gaussian_pair_expectation_deriv,
    kernel_recursion,
    variance_map,
)
from .symbolic_activations import polynomial_activation, sympy_activation
from .variants import LayerNormPostKernelMap, ResidualKernelMap, kernel_map

# Issue-6 names, imported on first use so that ``sigprop theory`` does not pay for scipy.stats at start-up.
_LAZY = {"equilibrium_layer": ".equilibrium", "centered_kernel_alignment": ".tangent"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACTIVATION_NAMES", "Activation", "activation", "custom_activation", "polynomial_activation", "sympy_activation",
    "hermite_coefficients", "KernelMap", "KernelMapBase", "Convergence", "kernel_map", "ResidualKernelMap",
    "LayerNormPostKernelMap",
    "gaussian_pair_expectation", "gaussian_pair_expectation_deriv", "gaussian_expectation", "kernel_recursion",
    "variance_map", "chi_parallel", "chi_perp", "fixed_point_variance", "correlation_map", "CriticalPoint",
    "critical_point", "critical_line", "equilibrium_layer", "centered_kernel_alignment",
]
