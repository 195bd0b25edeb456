"""sigprop.theory: exact and symbolic results for wide random networks, with no sampling.

Activations, Hermite coefficients, normalised kernel maps and their convergence cases, residual and
normalisation variants, the mean-field recursions with C_W, C_b (``sigprop.theory.meanfield``), finite-width
correlators (``sigprop.theory.correlators``), tangent kernels (``sigprop.theory.tangent``), the
equilibrium layer (``sigprop.theory.equilibrium``) and rainbow kernels (``sigprop.theory.rainbow``).  Bad
arguments raise :class:`InputError` (a ValueError) or :class:`InputTypeError` (also a TypeError).
"""
from .activations import ACTIVATION_NAMES, Activation, activation, as_activation, custom_activation
from .convergence import Convergence
from .equilibrium import equilibrium_layer
from .errors import InputError, InputTypeError
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
from .rainbow import anchor_covariance, rainbow_kernels
from .symbolic_activations import polynomial_activation, sympy_activation
from .tangent import centered_kernel_alignment
from .variants import LayerNormPostKernelMap, ResidualKernelMap, kernel_map

__all__ = [
    "ACTIVATION_NAMES", "Activation", "activation", "as_activation", "custom_activation", "polynomial_activation",
    "sympy_activation",
    "hermite_coefficients", "KernelMap", "KernelMapBase", "Convergence", "kernel_map", "ResidualKernelMap",
    "LayerNormPostKernelMap",
    "gaussian_pair_expectation", "gaussian_pair_expectation_deriv", "gaussian_expectation", "kernel_recursion",
    "variance_map", "chi_parallel", "chi_perp", "fixed_point_variance", "correlation_map", "CriticalPoint",
    "critical_point", "critical_line", "equilibrium_layer", "centered_kernel_alignment", "rainbow_kernels",
    "anchor_covariance", "InputError", "InputTypeError",
]
