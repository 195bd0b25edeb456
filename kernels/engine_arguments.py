"""The checks of the explicit-weight engines' arguments, shared by the compiled engines
(:mod:`sigprop.kernels.explicit_driver`) and their NumPy reference (:mod:`sigprop.kernels.reference`).

:func:`sigprop.kernels.simulate` checks a request once, at its entry (:func:`sigprop.kernels.simulate.check_request`);
the engines check their own arguments again here, since they are public functions too.  Every check is one of
:mod:`sigprop.theory.arguments`.
"""
from __future__ import annotations

import numpy as np

from sigprop.theory.activations import Activation
from sigprop.theory.arguments import flag, integer_in_range, nonnegative_real, one_of, real_in_range, seed_value
from sigprop.theory.errors import InputError, InputTypeError

from . import rng
from .layer_ops import NORM_CODES

__all__ = ["check_explicit_args"]

# The random generator's coordinates (sigprop.kernels.rng): networks below 2^32, layers below 2^24.
_MAX_NETWORKS = 2**32
_MAX_LAYERS = 2**24


def check_explicit_args(X, widths, C_W, C_b, n_networks, seed, weights, residual, norm, backward,
                        first_network=0, act=None) -> tuple[np.ndarray, tuple[int, ...]]:
    """Check the arguments shared by the explicit-weight engines; return (X as a float64 array, widths).

    Parameters
    ----------
    X : array_like
        Inputs (P, n_0), finite, ``P, n_0 >= 1``.
    widths : sequence of int
        Hidden widths, each >= 1 (>= 2 under LayerNorm), fewer than ``2^24 - 1`` layers.
    C_W, C_b : float
        Weight and bias variances, finite and >= 0.
    n_networks, first_network : int
        Networks ``first_network .. first_network + n_networks - 1`` (``n_networks >= 1``, within ``2^32``).
    seed : int
        In ``[0, 2^64)``.
    weights : str
        One of :data:`sigprop.kernels.rng.WEIGHT_KINDS`.
    residual : float
        The skip weight, in ``[0, 1]``.
    norm : str or None
        One of :data:`sigprop.kernels.layer_ops.NORM_CODES`.
    backward : bool
        Whether the backward pass is computed (needs ``residual=0`` and ``norm=None``).
    act : Activation, optional
        Checked to be an :class:`~sigprop.theory.activations.Activation` when given.

    Returns
    -------
    tuple
        ``(X, widths)``: X as a float64 array, widths as a tuple of int.

    Raises
    ------
    InputError, InputTypeError
        Naming the argument and its allowed range.

    Examples
    --------
    >>> X, widths = check_explicit_args([[1.0, 0.0]], [4, 4], 2.0, 0.0, 3, 0, "gaussian", 0.0, None, False)
    >>> X.dtype, widths
    (dtype('float64'), (4, 4))
    >>> check_explicit_args([[1.0]], [4], 2.0, 0.0, 3, 0, "cauchy", 0.0, None, False)
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: weights must be one of ('gaussian', 'rademacher', 'uniform'), got 'cauchy'
    """
    if act is not None and not isinstance(act, Activation):
        raise InputTypeError(f"act must be an Activation (sigprop.theory.activations.activation(...)), got {act!r}")
    X = _check_inputs(X)
    widths = _check_widths(widths)
    nonnegative_real("C_W", C_W)
    nonnegative_real("C_b", C_b)
    n_networks = integer_in_range("n_networks", n_networks, 1, _MAX_NETWORKS)
    integer_in_range("first_network", first_network, 0, _MAX_NETWORKS - n_networks)
    seed_value(seed)
    one_of("weights", weights, tuple(sorted(rng.WEIGHT_KINDS)))
    residual = real_in_range("residual", residual, 0.0, 1.0)
    one_of("norm", norm, tuple(NORM_CODES))
    if norm in ("ln_pre", "ln_post") and min(widths) < 2:
        raise InputError(f"norm={norm!r} (LayerNorm) needs every width >= 2, got widths={widths!r}")
    if flag("backward", backward) and (residual != 0.0 or norm is not None):
        raise InputError(f"backward=True needs residual=0 and norm=None, got residual={residual!r}, norm={norm!r}")
    return X, widths


def _check_inputs(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise InputError(f"X must be a (P, n_0) array with P, n_0 >= 1, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise InputError("X must be finite")
    return X


def _check_widths(widths) -> tuple[int, ...]:
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        raise InputTypeError(f"widths must be a sequence of ints >= 1, got {widths!r}")
    widths = tuple(integer_in_range(f"widths[{i}]", w, 1) for i, w in enumerate(widths))
    if not 1 <= len(widths) < _MAX_LAYERS - 1:
        raise InputError(f"widths must have between 1 and 2^24 - 2 entries (the layers), got {len(widths)}")
    return widths
