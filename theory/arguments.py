"""Argument checks shared by sigprop's public functions (each runs once, at the public entry, before any work).

Every check returns the value in its canonical type (``int``, ``float``, ``bool``, a float64 array) or raises
:class:`~sigprop.theory.errors.InputTypeError` (wrong type) / :class:`~sigprop.theory.errors.InputError` (outside
the allowed range) with a message that names the argument, the allowed range and the value, after the caller's
name ``who`` where one is given (``"train: lr must be finite and > 0, got -1.0"``).  Checks of one concept (a
covariance, a kernel, a network's widths) stay beside that concept and are built from these.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from sigprop.theory.errors import InputError, InputTypeError

__all__ = ["real_array", "numeric_array", "real_number", "real_in_range", "positive_real", "nonnegative_real",
           "integer_in_range", "flag", "one_of", "seed_value"]


def _head(name: str, who: str | None) -> str:
    """``"who: name"`` (or ``name`` alone): the subject of a message."""
    return f"{who}: {name}" if who else name


def numeric_array(x, name: str, who: str | None = None) -> np.ndarray:
    """``x`` as a NumPy array of integer or float dtype, its dtype kept (no copy when it is one already).

    Parameters
    ----------
    x : array_like
        Real numbers (bool, complex, object and strings are refused).
    name : str
        The argument's name, for the messages.
    who : str, optional
        The caller's name, put before ``name`` in the messages.

    Returns
    -------
    numpy.ndarray
        ``np.asarray(x)``.

    Raises
    ------
    InputTypeError
        ``x`` is not a real numeric array (or cannot be made into one, e.g. ragged lists).

    Examples
    --------
    >>> numeric_array([1, 2], "labels").dtype.kind
    'i'
    >>> numeric_array([True], "labels")
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputTypeError: labels must be a real numeric array (int or float), got dtype bool
    """
    head = _head(name, who)
    if isinstance(x, (str, bytes)) or x is None:
        raise InputTypeError(f"{head} must be a real numeric array, got {type(x).__name__}")
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged nested lists and the like
        raise InputTypeError(f"{head} must be a real numeric array ({exc})") from None
    if a.dtype.kind not in "iuf":
        raise InputTypeError(f"{head} must be a real numeric array (int or float), got dtype {a.dtype}")
    return a


def real_array(x, name: str, who: str | None, ndim: int | tuple[int, ...], *, allow_empty: bool = True) -> np.ndarray:
    """``x`` as a finite float64 array with ``ndim`` dimensions (one of them, for a tuple).

    Parameters
    ----------
    x : array_like
        Real numbers (int or float dtype; bool, complex, object and strings are refused).
    name, who : str
        The argument's and the caller's names, for the messages (``who=None``: the argument's alone).
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
    a = numeric_array(x, name, who)
    head = _head(name, who)
    dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if a.ndim not in dims:
        want = " or ".join(f"{d}-D" for d in dims)
        raise InputError(f"{head} must be a {want} array, got shape {a.shape}")
    if not allow_empty and a.size == 0:
        raise InputError(f"{head} must not be empty, got shape {a.shape}")
    a = a.astype(np.float64, copy=False)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{head} must be finite (no NaN or inf)")
    return a


def real_number(name: str, value, who: str | None = None) -> float:
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
    return real_in_range(name, value, who=who)


def _real_range_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    """``"> 0"``, ``"<= 2"``, ``"in [0, 1)"``: the allowed range, for the messages."""
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return (">" if lo_open else ">=") + f" {lo:g}"
    return "" if hi is None else ("<" if hi_open else "<=") + f" {hi:g}"


def real_in_range(name: str, value, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                  hi_open: bool = False, who: str | None = None) -> float:
    """``value`` as a finite float between ``lo`` and ``hi`` (each bound included unless ``*_open``, ``None``: none).

    Parameters
    ----------
    name : str
        The argument's name, for the messages.
    value : numbers.Real
        The value to check (bool refused).
    lo, hi : float, optional
        The bounds; ``None`` leaves that side open-ended.
    lo_open, hi_open : bool, optional
        Whether the bound itself is excluded.
    who : str, optional
        The caller's name, put before ``name`` in the messages.

    Returns
    -------
    float

    Raises
    ------
    InputTypeError
        ``value`` is not a real number.
    InputError
        ``value`` is NaN, infinite or outside the range.

    Examples
    --------
    >>> real_in_range("momentum", 0.9, 0.0, 1.0, hi_open=True)
    0.9
    >>> real_in_range("momentum", 1, 0.0, 1.0, hi_open=True, who="train")
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: train: momentum must be finite and in [0, 1), got 1.0
    """
    head, rng = _head(name, who), _real_range_text(lo, hi, lo_open, hi_open)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"{head} must be a real number{' ' + rng if rng else ''}, "
                             f"got {type(value).__name__} {value!r}")
    x = float(value)
    ok = math.isfinite(x) and (lo is None or (x > lo if lo_open else x >= lo)) and \
        (hi is None or (x < hi if hi_open else x <= hi))
    if not ok:
        raise InputError(f"{head} must be finite{' and ' + rng if rng else ''}, got {x!r}")
    return x


def positive_real(name: str, value, who: str | None = None) -> float:
    """``value`` as a finite float ``> 0`` (:func:`real_in_range` with ``lo=0`` excluded).

    Examples
    --------
    >>> positive_real("alpha", 2)
    2.0
    >>> positive_real("alpha", 0.0, "rfm")
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: rfm: alpha must be finite and > 0, got 0.0
    """
    return real_in_range(name, value, 0.0, lo_open=True, who=who)


def nonnegative_real(name: str, value, who: str | None = None) -> float:
    """``value`` as a finite float ``>= 0`` (:func:`real_in_range` with ``lo=0`` included).

    Examples
    --------
    >>> nonnegative_real("C_b", 0)
    0.0
    >>> nonnegative_real("C_b", float("inf"))
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: C_b must be finite and >= 0, got inf
    """
    return real_in_range(name, value, 0.0, who=who)


def integer_in_range(name: str, value, lo: int, hi: int | None = None, *, who: str | None = None) -> int:
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
    >>> integer_in_range("k", 5, 1, 4, who="demo")
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: demo: k must be an integer in [1, 4], got 5
    """
    head = _head(name, who)
    want = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{head} must be {want}, got {type(value).__name__} {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise InputError(f"{head} must be {want}, got {value!r}")
    return int(value)


def flag(name: str, value, who: str | None = None) -> bool:
    """``value`` as a bool: only ``True``/``False`` (NumPy's included), never a truthy number or string.

    Examples
    --------
    >>> flag("backward", True)
    True
    >>> flag("backward", 1, "demo")
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputTypeError: demo: backward must be True or False, got int 1
    """
    if not isinstance(value, (bool, np.bool_)):
        raise InputTypeError(f"{_head(name, who)} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _same_choice(value, choice) -> bool:
    """``value`` is ``choice``, or equal to it without a bool standing for a number (``True != 1`` here)."""
    if value is choice:
        return True
    if isinstance(value, bool) != isinstance(choice, bool) or not isinstance(value, type(choice)):
        return False
    try:
        return bool(value == choice)
    except (TypeError, ValueError):  # arrays and the like compare elementwise
        return False


def one_of(name: str, value, choices: Sequence, who: str | None = None):
    """``choice`` from ``choices`` equal to ``value`` (a bool never matches a number); else an error listing them.

    Parameters
    ----------
    name : str
        The argument's name, for the messages.
    value : object
        The value to check.
    choices : sequence
        The allowed values (strings, ``None``, numbers, ...), listed in the message as given.
    who : str, optional
        The caller's name, put before ``name`` in the messages.

    Returns
    -------
    object
        The matching element of ``choices`` (a plain ``str`` for a NumPy string, say).

    Raises
    ------
    InputTypeError
        ``value`` has none of the choices' types.
    InputError
        ``value`` has the type of a choice but is none of them.

    Examples
    --------
    >>> one_of("loss", "mse", ("mse", "cross_entropy"))
    'mse'
    >>> one_of("loss", "l1", ("mse", "cross_entropy"), "train")
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: train: loss must be one of ('mse', 'cross_entropy'), got 'l1'
    """
    for choice in choices:
        if _same_choice(value, choice):
            return choice
    head, listed = _head(name, who), tuple(choices)
    if not any(isinstance(value, type(c)) and isinstance(value, bool) == isinstance(c, bool) for c in choices):
        raise InputTypeError(f"{head} must be one of {listed}, got {type(value).__name__} {value!r}")
    raise InputError(f"{head} must be one of {listed}, got {value!r}")


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
