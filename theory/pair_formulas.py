"""Closed-form Gaussian pair expectations: the formulas the activation registry names.

A :class:`ClosedForm` bundles what is known in closed form for one activation, for ``(u_a, u_b) ~ N(0, K)`` with
``K = [[Kaa, Kab], [Kab, Kbb]]``:

* ``pair(Kaa, Kab, Kbb)`` = <phi(u_a) phi(u_b)>_K and ``pair_deriv`` = <phi'(u_a) phi'(u_b)>_K
  (general variances; used by :mod:`sigprop.theory.meanfield`);
* ``unit(rho, order)`` = d^order/drho^order E[phi(X) phi(Y)] for unit-variance X, Y with correlation rho,
  unnormalised, orders 0, 1, 2 (used by :class:`sigprop.theory.KernelMap`).

A registry entry (:mod:`sigprop.theory.activation_registry`) names its activation's closed form; the accessors of
:mod:`sigprop.theory.activation_closed_forms` read it from an :class:`~sigprop.theory.activations.Activation`.

Piecewise-linear ``phi = b max(x, 0) + a min(x, 0)`` (identity, relu, leaky_relu, abs):
``E = sqrt(Kaa Kbb) [A sqrt(1-rho^2) + (S - A arccos rho) rho]``, ``A = (a-b)^2/(2 pi)``, ``S = (a^2+b^2)/2``
(the arc-cosine kernel of degree 1); step: ``1/4 + arcsin(rho)/(2 pi)``;
erf: ``(2/pi) arcsin(2 Kab / sqrt((1+2Kaa)(1+2Kbb)))``; exp: ``exp((Kaa+Kbb)/2 + Kab)``;
sin/cos: ``exp(-(Kaa+Kbb)/2) sinh/cosh(Kab)``; GELU (unit variances only):
``rho/4 + (1/(2 pi)) (1/sqrt(4-rho^2) + rho arcsin(rho/2))``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sigprop.theory.errors import InputError

__all__ = ["ClosedForm", "piecewise_linear", "sqrt_product", "correlation", "STEP", "ERF", "GELU", "EXP", "SIN",
           "COS"]

_TWO_PI = 2.0 * math.pi
_TINY = np.finfo(float).tiny  # the smallest normal float64


@dataclass(frozen=True)
class ClosedForm:
    """The closed forms known for one activation (each None when unknown).

    Attributes
    ----------
    unit : callable or None
        ``unit(rho, order=0)``: d^order/drho^order E[phi(X) phi(Y)], unit variances, orders 0, 1, 2.
    pair : callable or None
        ``pair(Kaa, Kab, Kbb)``: <phi(u_a) phi(u_b)>_K, vectorised.
    pair_deriv : callable or None
        ``pair_deriv(Kaa, Kab, Kbb)``: <phi'(u_a) phi'(u_b)>_K, vectorised (phi'(0) the left slope).
    slopes : tuple of float or None
        ``(b, a)`` when phi = b max(x, 0) + a min(x, 0) (the piecewise-linear family), else None.

    Examples
    --------
    >>> round(float(ERF.unit(0.5)), 12), round(float(ERF.pair(1.0, 0.5, 1.0)), 12)
    (0.216346895939, 0.216346895939)
    """

    unit: Callable | None = None
    pair: Callable | None = None
    pair_deriv: Callable | None = None
    slopes: tuple[float, float] | None = None


def sqrt_product(a, b) -> np.ndarray:
    """``sqrt(a b)`` for arrays ``a, b >= 0`` over the whole float64 range.

    ``np.sqrt(a * b)`` where the product is a normal float (the usual value, bit for bit), else the same with the
    binary exponents taken out first (``a = ma 2^ea``, ``b = mb 2^eb``: ``sqrt(ma mb 2^r) 2^((ea + eb - r)/2)``,
    ``r`` the parity of ``ea + eb``), which neither overflows nor underflows and rounds once, as the usual form
    does (so ``sqrt_product(K, K) == K`` and a correlation ``K / sqrt_product(K, K)`` is exactly 1).

    Examples
    --------
    >>> float(sqrt_product(4.0, 9.0)), float(sqrt_product(1e200, 4e200)), float(sqrt_product(1e-200, 4e-200))
    (6.0, 2e+200, 2e-200)
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(over="ignore", under="ignore"):
        prod = a * b
    normal = np.isfinite(prod) & (prod >= _TINY)
    ma, ea = np.frexp(a)
    mb, eb = np.frexp(b)
    e = ea + eb
    r = e % 2
    scaled = np.ldexp(np.sqrt(ma * mb * np.ldexp(1.0, r)), (e - r) // 2)
    return np.where(normal, np.sqrt(np.where(normal, prod, 1.0)), scaled)


def correlation(Kaa, Kab, Kbb) -> np.ndarray:
    """``rho = Kab / sqrt(Kaa Kbb)`` clipped to [-1, 1] (0 where a variance is 0), without forming ``Kaa Kbb``
    where that product leaves the normal float64 range (:func:`sqrt_product`).

    Examples
    --------
    >>> float(correlation(1.0, 0.5, 1.0)), float(correlation(1e200, 0.5e200, 1e200)), float(correlation(0.0, 0.0, 1.0))
    (0.5, 0.5, 0.0)
    """
    den = sqrt_product(Kaa, Kbb)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(den > 0, Kab / np.where(den > 0, den, 1.0), 0.0)
    return np.clip(r, -1.0, 1.0)


def _check_order(order: int) -> None:
    if order not in (0, 1, 2):
        raise InputError(f"order must be 0, 1 or 2, got {order!r}")


# --------------------------------------------------------------------------------------------
# Piecewise linear: phi = b max(x, 0) + a min(x, 0)
# --------------------------------------------------------------------------------------------
def _pl_unit(b: float, a: float, rho, order: int):
    A = (a - b) ** 2 / _TWO_PI
    S = 0.5 * (a * a + b * b)
    rho = np.asarray(rho, dtype=float)
    one_m = np.maximum(1.0 - rho * rho, 0.0)
    if order == 0:
        return A * np.sqrt(one_m) + (S - A * np.arccos(rho)) * rho
    if order == 1:
        return S - A * np.arccos(rho)
    if order == 2:
        if A == 0.0:
            return np.zeros_like(rho)
        with np.errstate(divide="ignore"):
            return A / np.sqrt(one_m)
    raise InputError(f"order must be 0, 1 or 2, got {order!r}")


def _pl_pair_deriv(b: float, a: float):
    def f(Kaa, Kab, Kbb):
        same = 0.25 + np.arcsin(correlation(Kaa, Kab, Kbb)) / _TWO_PI  # P(++) = P(--)
        both = same * (a * a + b * b) + (1.0 - 2.0 * same) * a * b
        one0 = a * 0.5 * (a + b)  # one variance zero: phi'(0) = a times E phi'(u)
        za, zb = Kaa <= 0, Kbb <= 0
        return np.where(za & zb, a * a, np.where(za | zb, one0, both))
    return f


def piecewise_linear(b: float, a: float) -> ClosedForm:
    """The closed forms of ``phi = b max(x, 0) + a min(x, 0)`` (slope b for x > 0, a for x < 0).

    Examples
    --------
    >>> relu = piecewise_linear(1.0, 0.0)
    >>> relu.slopes, round(float(relu.unit(0.0)), 12)
    ((1.0, 0.0), 0.159154943092)
    """
    b, a = float(b), float(a)
    if a == b:
        def pair(Kaa, Kab, Kbb):
            return a * a * Kab
    else:
        def pair(Kaa, Kab, Kbb):
            return sqrt_product(Kaa, Kbb) * _pl_unit(b, a, correlation(Kaa, Kab, Kbb), 0)

    def unit(rho, order=0):
        return _pl_unit(b, a, rho, order)

    return ClosedForm(unit=unit, pair=pair, pair_deriv=_pl_pair_deriv(b, a), slopes=(b, a))


# --------------------------------------------------------------------------------------------
# step, erf, GELU
# --------------------------------------------------------------------------------------------
def _step_unit(rho, order: int = 0):
    rho = np.asarray(rho, dtype=float)
    one_m = np.maximum(1.0 - rho * rho, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if order == 0:
            return 0.25 + np.arcsin(rho) / _TWO_PI
        if order == 1:
            return 1.0 / (_TWO_PI * np.sqrt(one_m))
        if order == 2:
            return np.where(rho == 0, 0.0, rho / (_TWO_PI * one_m ** 1.5))
    raise InputError(f"order must be 0, 1 or 2, got {order!r}")


def _step_pair(Kaa, Kab, Kbb):
    return np.where((Kaa > 0) & (Kbb > 0), _step_unit(correlation(Kaa, Kab, Kbb), 0), 0.0)


def _erf_unit(rho, order: int = 0):
    rho = np.asarray(rho, dtype=float)
    q = 1.0 - 4.0 * rho * rho / 9.0
    if order == 0:
        return (2.0 / math.pi) * np.arcsin(2.0 * rho / 3.0)
    if order == 1:
        return (4.0 / (3.0 * math.pi)) / np.sqrt(q)
    if order == 2:
        return (4.0 / (3.0 * math.pi)) * (4.0 * rho / 9.0) / q**1.5
    raise InputError(f"order must be 0, 1 or 2, got {order!r}")


def _erf_pair(Kaa, Kab, Kbb):
    with np.errstate(over="ignore"):
        prod = (1.0 + 2.0 * Kaa) * (1.0 + 2.0 * Kbb)
    fine = np.isfinite(prod)
    # where the product overflows: 2 Kab / sqrt((1 + 2 Kaa)(1 + 2 Kbb)) = Kab / (sqrt(1/2 + Kaa) sqrt(1/2 + Kbb))
    arg = np.where(fine, 2.0 * Kab / np.sqrt(np.where(fine, prod, 1.0)), Kab / sqrt_product(0.5 + Kaa, 0.5 + Kbb))
    return (2.0 / math.pi) * np.arcsin(np.clip(arg, -1.0, 1.0))


def _erf_pair_deriv(Kaa, Kab, Kbb):
    with np.errstate(over="ignore", invalid="ignore"):
        prod = (1.0 + 2.0 * Kaa) * (1.0 + 2.0 * Kbb)
        kab2 = 4.0 * Kab * Kab
        # the usual form where it neither overflows nor cancels (loses more than 3 digits)
        plain = np.isfinite(prod) & np.isfinite(kab2) & (kab2 <= 0.999 * prod)
        usual = (4.0 / math.pi) / np.sqrt(np.where(plain, prod - kab2, 1.0))
    # else (1/2 + Kaa)(1/2 + Kbb) - Kab^2 = (1/2 + Kaa)(1/2 + Kbb) [(1 - rho^2) + rho^2 (ea + eb - ea eb)]
    # with ea = 1/2 / (1/2 + Kaa): a sum of non-negative terms, no overflow, no cancellation
    rho = correlation(Kaa, Kab, Kbb)
    ea, eb = 0.5 / (0.5 + Kaa), 0.5 / (0.5 + Kbb)
    q = (1.0 - rho) * (1.0 + rho) + rho * rho * (ea + eb - ea * eb)
    scaled = (2.0 / math.pi) / (sqrt_product(0.5 + Kaa, 0.5 + Kbb) * np.sqrt(q))
    return np.where(plain, usual, scaled)


def _gelu_unit(rho, order: int = 0):
    rho = np.asarray(rho, dtype=float)
    q = 4.0 - rho * rho
    if order == 0:
        return rho / 4.0 + (1.0 / _TWO_PI) * (1.0 / np.sqrt(q) + rho * np.arcsin(rho / 2.0))
    if order == 1:
        return 0.25 + (1.0 / _TWO_PI) * (rho / q**1.5 + np.arcsin(rho / 2.0) + rho / np.sqrt(q))
    if order == 2:
        return (1.0 / _TWO_PI) * (5.0 / q**1.5 + 3.0 * rho * rho / q**2.5 + 1.0 / np.sqrt(q))
    raise InputError(f"order must be 0, 1 or 2, got {order!r}")


# --------------------------------------------------------------------------------------------
# exp, sin, cos
# --------------------------------------------------------------------------------------------
def _exp_unit(rho, order=0):
    _check_order(order)
    return np.exp(1.0 + np.asarray(rho, dtype=float))


def _exp_pair(Kaa, Kab, Kbb):
    return np.exp(0.5 * (Kaa + Kbb) + Kab)


def _trig_unit(funcs):
    def f(rho, order=0):
        _check_order(order)
        return math.exp(-1.0) * funcs[order % 2](np.asarray(rho, dtype=float))
    return f


_SINH_MAX = 700.0  # |Kab| up to which sinh/cosh(Kab) is finite (overflow beyond ~710.5)


def _damped_hyperbolic(Kaa, Kab, Kbb, sign: float):
    """``exp(-(Kaa + Kbb)/2) (e^Kab + sign e^-Kab) / 2``: the usual product where ``|Kab| <= 700``, else each
    exponential shifted by ``-(Kaa + Kbb)/2 <= -|Kab|`` first (exponents <= 0: no overflow, no inf * 0)."""
    Kaa, Kab, Kbb = np.broadcast_arrays(np.asarray(Kaa, float), np.asarray(Kab, float), np.asarray(Kbb, float))
    small = np.abs(Kab) <= _SINH_MAX
    ks = np.where(small, Kab, 0.0)
    with np.errstate(over="ignore", under="ignore"):
        usual = np.exp(-0.5 * (Kaa + Kbb)) * (np.sinh(ks) if sign < 0 else np.cosh(ks))
        half = -0.5 * Kaa - 0.5 * Kbb
        shifted = 0.5 * (np.exp(half + Kab) + sign * np.exp(half - Kab))
    return np.where(small, usual, shifted)


def _sinh_pair(Kaa, Kab, Kbb):
    return _damped_hyperbolic(Kaa, Kab, Kbb, -1.0)


def _cosh_pair(Kaa, Kab, Kbb):
    return _damped_hyperbolic(Kaa, Kab, Kbb, 1.0)


STEP = ClosedForm(unit=_step_unit, pair=_step_pair)
ERF = ClosedForm(unit=_erf_unit, pair=_erf_pair, pair_deriv=_erf_pair_deriv)
GELU = ClosedForm(unit=_gelu_unit)
EXP = ClosedForm(unit=_exp_unit, pair=_exp_pair, pair_deriv=_exp_pair)
SIN = ClosedForm(unit=_trig_unit((np.sinh, np.cosh)), pair=_sinh_pair, pair_deriv=_cosh_pair)  # phi' = cos
COS = ClosedForm(unit=_trig_unit((np.cosh, np.sinh)), pair=_cosh_pair, pair_deriv=_sinh_pair)  # phi' = -sin
