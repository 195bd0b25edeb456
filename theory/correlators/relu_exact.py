"""Exact finite-width moments of ReLU networks (single input, no bias), any widths and C_W.

Derivation (conditioning layer by layer).  Given layer l, the neurons of layer l+1 are i.i.d.
``N(0, Sigma^{(l+1)})`` with ``Sigma^{(l+1)} = (C_W/n_l) sum_j relu(z_j^{(l)})^2`` and, given ``Sigma^{(l)}``, the
``z_j^{(l)}`` are i.i.d. ``N(0, Sigma^{(l)})``.  Write ``z_j = sqrt(Sigma^{(l)}) g_j``:
``relu(z_j)^2 = Sigma^{(l)} g_j^2 [g_j > 0]``.
The sign of ``g_j`` is independent of ``g_j^2``, so with ``k ~ Binomial(n_l, 1/2)`` active neurons

    Sigma^{(l+1)} = Sigma^{(l)} * (C_W/n_l) * chi^2_k,      chi^2_k independent of Sigma^{(l)},

a product of independent factors, started at ``Sigma^{(1)} = C_W G0`` (the first layer is exactly Gaussian).
``E[(chi^2_k)^m | k] = k (k+2) ... (k+2m-2)``, so ``E[(Sigma^{(l+1)})^m] = r_m(n_l) E[(Sigma^{(l)})^m]`` with

    r_m(n) = (C_W/n)^m E_{k ~ Bin(n,1/2)} [ prod_{j<m} (k + 2j) ],

evaluated exactly from the binomial factorial moments ``E[k (k-1) ... (k-r+1)] = n (n-1) ... (n-r+1) / 2^r``.
Finally ``E[z^{2m}] = (2m-1)!! E[Sigma^m]``.  At ``C_W = 2``: ``r_1 = 1`` (``E[z^2] = K`` with no 1/n correction)
and ``r_2 = 1 + 5/n``, so ``E[z^4] / (3 E[z^2]^2) = prod_{l'<l} (1 + 5/n_l')``.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import sympy as sp
from sympy.functions.combinatorial.numbers import stirling

from sigprop.theory.errors import InputError

from .deep_linear import check_positive, layer_moment_product, validate_widths
from .wick import n as _n

__all__ = ["relu_moment_factor", "relu_moments", "relu_kurtosis_ratio", "RELU_MAX_M"]

_CW = sp.Symbol("C_W", positive=True)

#: The largest m of :func:`relu_moments` (the symbolic derivation of its factor takes ~1 s at m = 20, 5 s at 40).
RELU_MAX_M = 30


@lru_cache(maxsize=None)
def _factor(m: int) -> sp.Expr:
    k = sp.Symbol("k", nonnegative=True, integer=True)
    poly = sp.Poly(sp.expand(sp.Mul(*[k + 2 * j for j in range(m)])), k)
    expectation = sp.Integer(0)
    for (p,), coeff in poly.terms():
        # E[k^p] = sum_r S(p, r) E[k falling r] = sum_r S(p, r) n^(r falling) / 2^r
        expectation += coeff * sum(stirling(p, r) * sp.ff(_n, r) / sp.Integer(2) ** r for r in range(p + 1))
    return sp.expand(expectation / _n**m)


def relu_moment_factor(m: int, C_W=None) -> sp.Expr:
    """``r_m(n)``: ``E[Sigma^{(l+1)}]^m = r_m(n_l) E[(Sigma^{(l)})^m]`` for a ReLU layer, exact in ``n``.

    Returned as a SymPy expression in the width symbol ``n`` (and ``C_W`` as a symbol when ``C_W`` is None;
    pass a number to substitute it).  ``relu_moment_factor(2, 2) = 1 + 5/n``.
    """
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise InputError(f"relu_moment_factor: m must be an integer >= 1, got {m!r}")
    base = _factor(int(m))
    cw = _CW if C_W is None else sp.nsimplify(check_positive(C_W, "C_W"))
    return sp.expand(cw**m * base)


@lru_cache(maxsize=None)
def _factor_fn(m: int):
    return sp.lambdify(_n, _factor(m), "math")


def relu_moments(m: int, widths: Sequence[int], C_W: float = 2.0, G0: float = 1.0) -> np.ndarray:
    """``G_2m^{(l)} = E[z^{2m}] / (2m-1)!!`` of a ReLU network for layers ``l = 1..len(widths)`` (index 0 = layer 1).

    Exact at any width (no bias).  ``widths[i]`` is the width of hidden layer ``i+1``; ``G0 = |x|^2/n_0``.
    """
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m <= RELU_MAX_M:
        raise InputError(f"relu_moments: m must be an integer in [1, {RELU_MAX_M}] (its factor is derived "
                         f"symbolically, in seconds at m = 30 and steeply longer beyond), got {m!r}")
    w = validate_widths(widths)
    C_W = check_positive(C_W, "C_W")
    G0 = check_positive(G0, "G0")
    return layer_moment_product(_factor_fn(int(m)), m, w, C_W, G0, who="relu_moments")


def relu_kurtosis_ratio(widths: Sequence[int], C_W: float = 2.0) -> np.ndarray:
    """``E[z^4] / (3 E[z^2]^2)`` per layer: ``prod_{l'<l} (1 + 5/n_l')`` (independent of ``C_W`` and ``G0``)."""
    return relu_moments(2, widths, C_W) / relu_moments(1, widths, C_W) ** 2
