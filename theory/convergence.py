"""Convergence of the kernel sequence rho_{l+1} = kappa(rho_l): the four cases of Joudaki & Hofmann's theorem.

| case | condition                   | rho*      | rate a                                                   |
|------|-----------------------------|-----------|----------------------------------------------------------|
| 1    | kappa(0) = 0                | 0         | 1/(2 - kappa'(0))                                        |
| 2    | kappa(0) > 0, kappa'(1) < 1 | 1         | kappa'(1)                                                |
| 3    | kappa(0) > 0, kappa'(1) = 1 | 1         | 1 - kappa(0) - kappa'(0)                                 |
| 4    | kappa(0) > 0, kappa'(1) > 1 | in (0, 1) | max{1-kappa(0), kappa'(rho*), (1-rho*)/(2-kappa'(rho*))} |

| case | bound                                              |
|------|----------------------------------------------------|
| 1    | |rho_l|/(1-|rho_l|) <= |rho_0|/(1-|rho_0|) a^l     |
| 2    | |rho_l - 1| <= |rho_0 - 1| a^l                     |
| 3    | |rho_l - 1| <= |rho_0 - 1| / (l a |rho_0 - 1| + 1) |
| 4    | |rho_l - rho*| <= |rho_0 - rho*|/(1-|rho_0|) a^l   |

Tolerances (explicit, module constants): ``|kappa(0)| <= KAPPA0_TOL`` (1e-12) is case 1; otherwise
``|kappa'(1) - 1| <= KAPPA_PRIME1_TOL`` (1e-9) is case 3.  A linear map (kappa'(0) = 1 within LINEAR_TOL, i.e.
kappa(rho) = rho) is not covered by the theorem: :func:`classify` raises ValueError for it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sigprop.theory.errors import InputError


def _brentq(*args, **kwargs):
    from scipy.optimize import brentq  # lazy: keeps `sigprop theory` start-up fast

    return brentq(*args, **kwargs)


__all__ = ["Convergence", "classify", "KAPPA0_TOL", "KAPPA_PRIME1_TOL", "LINEAR_TOL"]

KAPPA0_TOL = 1e-12
KAPPA_PRIME1_TOL = 1e-9
LINEAR_TOL = 1e-12


def _check_rho0(rho0) -> np.ndarray:
    r = np.asarray(rho0, dtype=float)
    if np.any(np.isnan(r)) or np.any(np.abs(r) > 1.0):
        raise InputError(f"rho0 must be in [-1, 1] (no NaN), got {rho0!r}")
    return r


def _check_depth(depth) -> np.ndarray:
    d = np.asarray(depth)
    if d.dtype.kind not in "iuf" or np.any(~np.isfinite(d.astype(float))) or np.any(d < 0):
        raise InputError(f"depth must be >= 0 (integers), got {depth!r}")
    return d.astype(float)


@dataclass(frozen=True)
class Convergence:
    """Result of the classification.  ``bound(depth, rho0)`` bounds the distance |rho_l - rho*| (vectorised in
    depth and rho0); ``raw_bound`` is the left-hand side exactly as in the table (for case 1 the quantity
    |rho_l|/(1-|rho_l|), which implies |rho_l| <= B/(1+B); the other cases coincide with ``bound``)."""

    case: int
    rho_star: float
    rate: float
    kappa0: float
    kappa_prime0: float
    kappa_prime1: float
    kappa_prime_star: float

    def raw_bound(self, depth, rho0) -> np.ndarray:
        l = _check_depth(depth)
        r0 = _check_rho0(rho0)
        a = self.rate
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.case == 1:
                q0 = np.where(np.abs(r0) < 1, np.abs(r0) / (1.0 - np.abs(r0)), np.inf)
                return q0 * a**l
            if self.case == 2:
                return np.abs(r0 - 1.0) * a**l
            if self.case == 3:
                d0 = np.abs(r0 - 1.0)
                return d0 / (l * a * d0 + 1.0)
            q0 = np.where(np.abs(r0) < 1, np.abs(r0 - self.rho_star) / (1.0 - np.abs(r0)), np.inf)
            return q0 * a**l

    def bound(self, depth, rho0) -> np.ndarray:
        B = self.raw_bound(depth, rho0)
        if self.case == 1:
            with np.errstate(invalid="ignore"):
                return np.where(np.isinf(B), 1.0, B / (1.0 + B))
        return B


def _bisect_root(kappa, lo: float, hi: float) -> float:
    """Root of kappa(rho) - rho in (lo, hi) with h(lo) > 0 > h(hi), by Brent's method to full precision."""
    return float(_brentq(lambda r: float(kappa(r)) - r, lo, hi, xtol=1e-16, rtol=4 * np.finfo(float).eps,
                                 maxiter=500))


def classify(km) -> Convergence:
    """Classify a kernel map ``km`` (any object with ``__call__``, ``derivative``, ``kappa0``, ``kappa_prime0``,
    ``kappa_prime1``) into the theorem's cases; rho* in case 4 by a bracketing root finder on (0, 1)."""
    k0, kp0, kp1 = float(km.kappa0), float(km.kappa_prime0), float(km.kappa_prime1)
    if abs(kp0 - 1.0) <= LINEAR_TOL and abs(k0) <= KAPPA0_TOL:
        raise InputError("the kernel map is linear (kappa(rho) = rho): every rho is a fixed point and the "
                         "convergence theorem (for nonlinear activations) does not apply")
    if abs(k0) <= KAPPA0_TOL:
        a = 1.0 / (2.0 - kp0)
        return Convergence(1, 0.0, a, k0, kp0, kp1, kp0)
    if abs(kp1 - 1.0) <= KAPPA_PRIME1_TOL:
        return Convergence(3, 1.0, 1.0 - k0 - kp0, k0, kp0, kp1, kp1)
    if kp1 < 1.0:
        return Convergence(2, 1.0, kp1, k0, kp0, kp1, kp1)
    # case 4: h(rho) = kappa(rho) - rho has h(0) = kappa(0) > 0 and h < 0 just below 1 (kappa'(1) > 1)
    hi = None
    for e in range(1, 17):
        x = 1.0 - 10.0 ** (-e / 1.0)
        if float(km(x)) - x < 0:
            hi = x
            break
    if hi is None:
        raise InputError("case 4: could not bracket the fixed point in (0, 1) (kappa(rho) >= rho up to 1 - 1e-16)")
    rs = _bisect_root(km, 0.0, hi)
    kps = float(km.derivative(rs, order=1))
    a = max(1.0 - k0, kps, (1.0 - rs) / (2.0 - kps))
    return Convergence(4, rs, a, k0, kp0, kp1, kps)
