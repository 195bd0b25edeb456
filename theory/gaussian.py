"""Gaussian expectations split at kinks: the integration core of the theory package.

``expect(f, var, kinks)`` = E[f(u)], u ~ N(0, var), by adaptive quadrature on the pieces between kinks
(scaled to the standard normal), to ~1e-13 absolute for smooth pieces with Gaussian-dominated tails.
``expect2(f, K, kinks)`` = E[f(u_a, u_b)], (u_a, u_b) ~ N(0, K) for a 2x2 PSD K, by iterated 1-D
integration over the conditional law u_b | u_a, split at the kinks of both arguments.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from scipy import integrate

__all__ = ["expect", "expect2", "std_normal_pdf"]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_CUT = 38.0  # |x| beyond which the standard normal density underflows float64 (exp(-722) ~ 1e-314)


def std_normal_pdf(x):
    return _INV_SQRT_2PI * np.exp(-0.5 * np.asarray(x, dtype=float) ** 2)


def _pieces(kinks: Sequence[float], lo: float = -_CUT, hi: float = _CUT) -> list[tuple[float, float]]:
    pts = sorted({float(k) for k in kinks if lo < k < hi})
    edges = [lo, *pts, hi]
    return list(zip(edges[:-1], edges[1:]))


def expect(f: Callable[[float], float], var: float = 1.0, kinks: Sequence[float] = (), *,
           epsabs: float = 1e-14, epsrel: float = 1e-13, limit: int = 200) -> float:
    """E[f(u)] for u ~ N(0, var); ``f`` is a scalar or vectorised callable, ``kinks`` in units of u."""
    if not (math.isfinite(var) and var >= 0.0):
        raise ValueError(f"expect: var must be finite and >= 0, got {var!r}")
    if var == 0.0:
        return float(f(0.0))
    s = math.sqrt(var)
    total = 0.0
    for a, b in _pieces([k / s for k in kinks]):
        # split each infinite-looking piece at 0 and +-8 so quad sees the bulk of the mass
        sub = sorted({a, b, *[p for p in (-8.0, 0.0, 8.0) if a < p < b]})
        for lo, hi in zip(sub[:-1], sub[1:]):
            val, _ = integrate.quad(lambda x: float(f(s * x)) * _INV_SQRT_2PI * math.exp(-0.5 * x * x),
                                    lo, hi, epsabs=epsabs, epsrel=epsrel, limit=limit)
            total += val
    return total


def expect2(f: Callable[[float, float], float], K: np.ndarray, kinks: Sequence[float] = (), *,
            epsabs: float = 1e-13, epsrel: float = 1e-12) -> float:
    """E[f(u_a, u_b)] for (u_a, u_b) ~ N(0, K), K a 2x2 PSD matrix; ``kinks`` apply to both arguments.

    Written as u_a = sqrt(K_aa) x, u_b = (K_ab/sqrt(K_aa)) x + sqrt(K_bb - K_ab^2/K_aa) y with x, y
    independent standard normals; the inner integral over y is split where u_b crosses a kink.
    """
    K = np.asarray(K, dtype=float)
    if K.shape != (2, 2) or not np.all(np.isfinite(K)):
        raise ValueError(f"expect2: K must be a finite 2x2 matrix, got shape {K.shape}")
    kaa, kab, kbb = K[0, 0], 0.5 * (K[0, 1] + K[1, 0]), K[1, 1]
    if kaa < 0 or kbb < 0 or kab * kab > kaa * kbb * (1 + 1e-12):
        raise ValueError(f"expect2: K must be positive semi-definite, got {K.tolist()}")
    if kaa == 0.0:
        return expect(lambda ub: f(0.0, ub), kbb, kinks)
    sa = math.sqrt(kaa)
    beta = kab / sa
    cond = max(kbb - beta * beta, 0.0)
    sc = math.sqrt(cond)

    def inner(x: float) -> float:
        ua = sa * x
        if sc == 0.0:
            return float(f(ua, beta * x))
        ks = [(k - beta * x) / sc for k in kinks]
        return expect(lambda y: f(ua, beta * x + sc * y), 1.0, ks, epsabs=epsabs, epsrel=epsrel)

    return expect(inner, 1.0, [k / sa for k in kinks], epsabs=epsabs, epsrel=epsrel)
