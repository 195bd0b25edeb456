"""Exact finite-width correlators of deep linear networks (single input, no bias), any widths and C_W.

``E[z_{i1} ... z_{i2m}]^{(l)} = (sum over pairings of delta_i) G_2m^{(l)}``, so ``E[z^{2m}] = (2m-1)!! G_2m`` and
``G_2m = E[z_{i1}^2 ... z_{im}^2]`` for distinct neurons.  With ``G_2^{(1)} = C_W G0`` (``G0 = |x|^2/n_0``):

    G_2m^{(1)} = (C_W G0)^m,     G_2m^{(l+1)} = C_W^m c_2m(n_l) G_2m^{(l)},   c_2m = wick_factor(m),

hence ``G_2m^{(l)} = [prod_{l'<l} c_2m(n_l')] (G_2^{(l)})^m`` exactly.  Connected four-point function (one input):
``E[z_{i1}..z_{i4}]_conn = (d12 d34 + d13 d24 + d14 d23) (G_4 - G_2^2)``; its coefficient
``G_4 - G_2^2 = [prod (1 + 2/n_l') - 1] G_2^2``, whose leading term is ``sum_{l'<l} 2/n_l' G_2^2``
(``2(l-1)/n G_2^2`` at equal widths).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import sympy as sp

from sigprop.theory.errors import InputError, InputTypeError

from .wick import n as _n
from .wick import wick_factor

__all__ = ["deep_linear_moments", "deep_linear_four_point", "DeepLinearFourPoint", "validate_widths",
           "check_moment_range", "MAX_LAYERS", "MAX_CLI_M"]


def validate_widths(widths, name: str = "widths") -> np.ndarray:
    """Widths of hidden layers 1..L as a float array; each a positive integer (float allowed if integral)."""
    if isinstance(widths, (int, np.integer)) and not isinstance(widths, bool):
        raise InputTypeError(f"{name} must be a sequence of hidden-layer widths (one per layer), "
                             f"got the int {widths!r}")
    try:
        w = np.asarray(list(widths), dtype=float)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name} must be a sequence of positive integers, got {widths!r}") from None
    if w.ndim != 1 or w.size == 0:
        raise InputError(f"{name} must be a non-empty 1-D sequence of widths, got {widths!r}")
    if not np.all(np.isfinite(w)) or np.any(w < 1) or np.any(w != np.round(w)):
        raise InputError(f"{name} must hold integers >= 1, got {w.tolist()}")
    return w


def check_positive(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise InputTypeError(f"{name} must be a real number, got {x!r}")
    x = float(x)
    if not (math.isfinite(x) and x > 0):
        raise InputError(f"{name} must be finite and > 0, got {x!r}")
    return x


#: The most hidden layers ``sigprop correlators`` takes in ``--widths`` (counted before the list is built).
MAX_LAYERS = 10_000
#: The largest ``m`` of ``sigprop correlators deep-linear`` (the moments grow like m! and overflow long before).
MAX_CLI_M = 1000

#: Largest m for which the numeric path uses the Wick-derived expression itself (m = 5 is 945 contractions,
#: 0.1 s); beyond it the product formula prod_{j<m} (1 + 2j/n), which the derivation reproduces for every m
#: it was run on (tests/test_wick.py), avoids the (2m-1)!! enumeration.
WICK_DERIVED_MAX_M = 5


@lru_cache(maxsize=None)
def _factor_fn(m: int):
    if m <= WICK_DERIVED_MAX_M:
        return sp.lambdify(_n, wick_factor(m), "math")
    return lambda w: math.prod(1.0 + 2.0 * j / w for j in range(m))


def deep_linear_moments(m: int, widths: Sequence[int], C_W: float = 1.0, G0: float = 1.0) -> np.ndarray:
    """``G_2m^{(l)}`` for every hidden layer ``l = 1..len(widths)`` (array index 0 = layer 1), exact at any width.

    ``widths[i]`` is the width of hidden layer ``i+1``; ``G0 = |x|^2 / n_0``.  ``E[z^{2m}] = (2m-1)!! G_2m``.
    Recursion ``G_2m^{(l+1)} = C_W^m c_2m(n_l) G_2m^{(l)}`` with ``c_2m`` from :func:`wick_factor` (derived by
    Wick contraction).  The width of the last layer does not enter (only layers before it do).
    """
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise InputError(f"deep_linear_moments: m must be an integer >= 1, got {m!r}")
    w = validate_widths(widths)
    C_W = check_positive(C_W, "C_W")
    G0 = check_positive(G0, "G0")
    return layer_moment_product(_factor_fn(int(m)), m, w, C_W, G0, who="deep_linear_moments")


_LOG_MAX = math.log(np.finfo(float).max)
_LOG_TINY = math.log(np.finfo(float).tiny)


def _log_factor(factor, n: float) -> float:
    """``log factor(n)``; inf where the factor overflows float64."""
    try:
        v = float(factor(n))
    except OverflowError:
        return math.inf
    return math.log(v) if math.isfinite(v) and v > 0 else math.inf


def check_moment_range(factor, m: int, widths: np.ndarray, C_W: float, G0: float, who: str) -> None:
    """InputError, before any work, when ``G^(l)`` of :func:`layer_moment_product` leaves the normal float64 range
    at some layer: worked out in logarithms, it names that layer and the largest number of layers allowed.

    Examples
    --------
    >>> check_moment_range(lambda n: 1.0 + 2.0 / n, 2, np.full(3300, 8.0), 1.0, 1.0, "demo")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: demo: G_4 overflows float64 (about 1e+308.3) at layer 3182 ...: at most 3181 ...
    """
    uniq, inv = np.unique(widths, return_inverse=True)
    step = m * math.log(C_W) + np.array([_log_factor(factor, float(n)) for n in uniq])[inv]
    first = m * (math.log(C_W) + math.log(G0))
    with np.errstate(invalid="ignore"):
        logg = first + np.concatenate([[0.0], np.cumsum(step[:-1])])
    margin = 1e-9 * np.maximum(1.0, np.abs(logg))  # rounding of the logarithms
    bad = ~((logg < _LOG_MAX - margin) & (logg > _LOG_TINY + margin))
    if not np.any(bad):
        return
    k = int(np.argmax(bad))
    what = "underflows" if logg[k] <= _LOG_TINY + margin[k] else "overflows"
    size = f"about 1e{logg[k] / math.log(10.0):+.1f}" if math.isfinite(logg[k]) else "beyond any float"
    where = (f"at layer {k + 1} with C_W={C_W:g}, G0={G0:g}, m={m}: at most {k} layers are allowed there, got widths "
             f"with {widths.size}") if k > 0 else (f"at layer 1: (C_W G0)^m with C_W={C_W:g}, G0={G0:g}, m={m}; "
                                                   "C_W G0 or m must be smaller")
    raise InputError(f"{who}: G_{2 * m} {what} float64 ({size}) {where}")


def layer_moment_product(factor, m: int, widths: np.ndarray, C_W: float, G0: float,
                         who: str = "layer_moment_product") -> np.ndarray:
    """``G^(1) = (C_W G0)^m`` and ``G^(l+1) = C_W^m factor(n_l) G^(l)``: the layer product shared by the exact
    single-input families (deep linear with ``factor = c_2m``, critical-ReLU moments with their mixture factor).
    An InputError (:func:`check_moment_range`, before the product) where a layer's value leaves the float64 range."""
    check_moment_range(factor, m, widths, C_W, G0, who)
    out = np.empty(widths.size)
    g = (C_W * G0) ** m
    for l in range(widths.size):
        out[l] = g
        g = g * C_W**m * factor(float(widths[l]))
    return out


@dataclass(frozen=True)
class DeepLinearFourPoint:
    """Per-layer arrays (index 0 = layer 1): ``G2``, ``G4``, ``connected`` = ``G4 - G2^2`` (the coefficient of each
    pairing structure in the connected four-point function; ``E[z^4] - 3 E[z^2]^2 = 3 connected``), and
    ``leading`` = ``sum_{l'<l} (2/n_l') G2^2``, its first-order term in 1/n."""

    G2: np.ndarray
    G4: np.ndarray
    connected: np.ndarray
    leading: np.ndarray


def deep_linear_four_point(widths: Sequence[int], C_W: float = 1.0, G0: float = 1.0) -> DeepLinearFourPoint:
    """Exact two- and four-point functions of a deep linear network and the leading 1/n term of the connected part."""
    w = validate_widths(widths)
    G2 = deep_linear_moments(1, w, C_W, G0)
    G4 = deep_linear_moments(2, w, C_W, G0)
    inv = np.concatenate([[0.0], np.cumsum(2.0 / w[:-1])])
    return DeepLinearFourPoint(G2=G2, G4=G4, connected=G4 - G2**2, leading=inv * G2**2)
