"""Exact rescaling by powers of two, for measures that must not overflow at extreme magnitudes.

Multiplying a float array by ``2^k`` is exact (no rounding) unless it leaves float64's normal range, so a
scale-invariant quantity computed on ``x 2^-e`` is, at ordinary magnitudes, the same float as on ``x``, and at extreme
ones it neither overflows nor underflows.  :func:`unit_scale` scales an array into ``[-1, 1]``; :func:`rescaled`
scales a result back and raises an :class:`~sigprop.theory.errors.InputError` when it is beyond float64.

Examples
--------
>>> import numpy as np
>>> y, e = unit_scale(np.array([3.0, -1e300]))
>>> e, float(np.max(np.abs(y))) <= 1.0
(997, True)
>>> float(rescaled(y, e, "f", "f(x)", "max|x| = 1e300", "x")[1])
-1e+300
"""
from __future__ import annotations

import math

import numpy as np

from sigprop.theory.errors import InputError

__all__ = ["binary_exponent", "unit_scale", "power_denominator", "rescaled"]


def binary_exponent(x: np.ndarray) -> int:
    """``e`` with ``2^(e-1) <= max|x| < 2^e`` (0 for an all-zero or empty array)."""
    top = float(np.max(np.abs(x))) if x.size else 0.0
    return math.frexp(top)[1]


def unit_scale(x: np.ndarray, multiple: int = 1) -> tuple[np.ndarray, int]:
    """``(x 2^-e, e)`` with ``e = binary_exponent(x)`` rounded up to a multiple of ``multiple``: every entry in
    ``[-1, 1]``, the largest in ``[2^-multiple, 1)``.

    Multiplying by a power of two is exact (no rounding; only entries more than ``2^1021`` times smaller than the
    largest can land among the subnormals and lose digits), and every later sum and product of the scaled array is
    the exact scaling of the unscaled one.  So a scale-invariant quantity computed from ``x 2^-e`` is, at ordinary
    magnitudes, the same float as from ``x``, and at extreme ones it does not overflow or underflow.
    """
    e = -(-binary_exponent(x) // multiple) * multiple
    return (np.ldexp(x, -e), e) if e else (x, 0)


def power_denominator(alpha: float) -> int:
    """The smallest ``q <= 64`` with ``q alpha`` an integer (1 if none): scaling a matrix by ``2^(-q j)`` scales its
    ``alpha``-th power by the power of two ``2^(-q alpha j)``, so for ``alpha = 1/2`` (square root, correctly
    rounded) the result is the exact scaling of the unscaled one."""
    return next((q for q in range(1, 65) if float(q * alpha).is_integer()), 1)


def rescaled(R: np.ndarray, e: int, who: str, what: str, cause: str, names: str) -> np.ndarray:
    """``R 2^e`` (exact), or an InputError when it exceeds float64: ``what`` overflows because of ``cause``; the
    message asks to rescale the arguments ``names``."""
    with np.errstate(over="ignore"):
        out = np.ldexp(R, e)
    if not np.all(np.isfinite(out)):
        size = math.log10(float(np.max(np.abs(R)))) + e * math.log10(2.0)
        raise InputError(f"{who}: {what} overflows float64: its largest entry would be about 1e{size:.0f} "
                         f"(float64 ends near 1.8e308) because {cause}; rescale {names}")
    return out
