"""Finite-width correlators of deep networks: symbolic Wick derivations, exact values, 1/n recursions.

* :func:`wick_factor` -- ``c_2m(n)``, derived by Wick contraction (``wick``);
* :func:`deep_linear_moments`, :func:`deep_linear_four_point` -- exact deep-linear ``G_2m`` (``deep_linear``);
* :func:`relu_moments`, :func:`relu_kurtosis_ratio`, :func:`relu_moment_factor` -- exact ReLU moments (``relu_exact``);
* :func:`vertex_recursion` -- leading-order ``K`` and ``kappa_4 = V/n`` for any activation (``vertex``);
* :func:`multi_input_vertex_recursion` -- ``V_(ab)(cd)`` for two inputs (``multi_input``);
* :func:`vertex_any_p` -- ``V_(ab)(cd)`` for any number of inputs (``vertex_any_p``);
* :func:`finite_width_ntk` -- the NTK at finite width: mean and 1/n shift, ``D``, ``F``, ``A``, ``B`` (``ntk_finite``).
"""
from .deep_linear import DeepLinearFourPoint, deep_linear_four_point, deep_linear_moments
from .multi_input import MultiVertexResult, derive_score_weights, multi_input_vertex_recursion
from .ntk_finite import FiniteWidthNTK, finite_width_ntk
from .relu_exact import relu_kurtosis_ratio, relu_moment_factor, relu_moments
from .vertex import (
    VertexResult,
    derive_scale_invariant_vertex,
    double_critical_point,
    scale_invariant_vertex,
    vertex_recursion,
)
from .vertex_any_p import vertex_any_p
from .wick import closed_form, depth_to_width_limit, derive_layer_recursion, inverse_width_series, n, wick_factor

__all__ = [
    "wick_factor", "derive_layer_recursion", "closed_form", "inverse_width_series", "depth_to_width_limit", "n",
    "deep_linear_moments", "deep_linear_four_point", "DeepLinearFourPoint",
    "relu_moments", "relu_kurtosis_ratio", "relu_moment_factor",
    "vertex_recursion", "VertexResult", "scale_invariant_vertex", "derive_scale_invariant_vertex",
    "double_critical_point",
    "multi_input_vertex_recursion", "MultiVertexResult", "derive_score_weights",
    "vertex_any_p",
    "finite_width_ntk", "FiniteWidthNTK",
]
