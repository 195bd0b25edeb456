"""Argument checks shared by sigprop's public functions (each runs once, at the public entry, before any work)."""
from __future__ import annotations

import math
import numbers

import numpy as np

from sigprop.theory.errors import InputError, InputTypeError

__all__ = ["real_array", "real_number", "integer_in_range", "seed_value"]


def real_array(x, name: str, who: str, ndim: int | tuple[int, ...], *, allow_empty: bool = True) -> np.ndarray:
    """``x`` as a finite float64 array with ``ndim`` dimensions (one of them, for a tuple).

    Parameters
    ----------
    x : array_like
        Real numbers (int or float dtype; bool, complex, object and strings are refused).
    name, who : str
        The argument's and the caller's names, for the messages.
    ndim : int or tuple of int
        Allowed numbers of dimensions.
    allow_empty : bool, optional
        Whether an array with no elements is accepted.

    Returns
    -------
    numpy.ndarray
        float64 (a copy only when ``x`` is not float64 already).

    Raises
    ------
    InputTypeError
        ``x`` is not a real numeric array (or cannot be made into one, e.g. ragged lists).
    InputError
        Wrong number of dimensions, empty when not allowed, or a NaN/inf entry.

    Examples
    --------
    >>> real_array([[1, 2], [3, 4]], "W", "demo", 2).dtype
    dtype('float64')
    >>> real_array([1.0, float("nan")], "y", "demo", 1)
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: demo: y must be finite (no NaN or inf)
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise InputTypeError(f"{who}: {name} must be a real numeric array, got {type(x).__name__}")
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged nested lists and the like
        raise InputTypeError(f"{who}: {name} must be a real numeric array ({exc})") from None
    if a.dtype.kind not in "iuf":
        raise InputTypeError(f"{who}: {name} must be a real numeric array (int or float), got dtype {a.dtype}")
    dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if a.ndim not in dims:
        want = " or ".join(f"{d}-D" for d in dims)
        raise InputError(f"{who}: {name} must be a {want} array, got shape {a.shape}")
    if not allow_empty and a.size == 0:
        raise InputError(f"{who}: {name} must not be empty, got shape {a.shape}")
    a = a.astype(np.float64, copy=False)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{who}: {name} must be finite (no NaN or inf)")
    return a


def real_number(name: str, value) -> float:
    """``value`` as a finite float; an InputTypeError for a non-real (bool included), an InputError for NaN/inf.

    Examples
    --------
    >>> real_number("C_W", 2)
    2.0
    >>> real_number("C_W", True)
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputTypeError: C_W must be a real number, got bool True
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite, got {value!r}")
    return value


def integer_in_range(name: str, value, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in ``[lo, hi]`` (``hi=None``: no upper bound); an InputTypeError for a non-integer (bool
    included), an InputError naming ``name`` and the range otherwise.

    Examples
    --------
    >>> integer_in_range("blas_threads", 2, 1)
    2
    >>> integer_in_range("blas_threads", 0, 1)
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: blas_threads must be an integer >= 1, got 0
    """
    want = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{name} must be {want}, got {type(value).__name__} {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise InputError(f"{name} must be {want}, got {value!r}")
    return int(value)


def seed_value(value, name: str = "seed") -> int:
    """A seed of the counter-based generator: an int in ``[0, 2^64)``, else an error naming ``name``.

    Examples
    --------
    >>> seed_value(7)
    7
    >>> seed_value(-1)
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: seed must be an int in [0, 2^64), got -1
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{name} must be an int in [0, 2^64), got {type(value).__name__} {value!r}")
    if not 0 <= int(value) < 2**64:
        raise InputError(f"{name} must be an int in [0, 2^64), got {value!r}")
    return int(value)
