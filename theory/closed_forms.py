"""Closed-form Gaussian pair expectations for the activations that have them.

Two families, both for ``(u_a, u_b) ~ N(0, K)`` with ``K = [[Kaa, Kab], [Kab, Kbb]]``:

* ``pair_form(act)(Kaa, Kab, Kbb)`` = <phi(u_a) phi(u_b)>_K and ``pair_deriv_form(act)`` = <phi'(u_a) phi'(u_b)>_K
  (general variances; used by :mod:`sigprop.theory.meanfield`);
* ``unit_form(act)(rho, order)`` = d^order/drho^order E[phi(X) phi(Y)] for unit-variance X, Y with correlation rho,
  unnormalised, orders 0, 1, 2 (used by :class:`sigprop.theory.KernelMap`).

Piecewise-linear ``phi = b max(x, 0) + a min(x, 0)`` (identity, relu, leaky_relu, abs):
``E = sqrt(Kaa Kbb) [A sqrt(1-rho^2) + (S - A arccos rho) rho]``, ``A = (a-b)^2/(2 pi)``, ``S = (a^2+b^2)/2``
(the arc-cosine kernel of degree 1); step: ``1/4 + arcsin(rho)/(2 pi)``;
erf: ``(2/pi) arcsin(2 Kab / sqrt((1+2Kaa)(1+2Kbb)))``; exp: ``exp((Kaa+Kbb)/2 + Kab)``;
sin/cos: ``exp(-(Kaa+Kbb)/2) sinh/cosh(Kab)``; GELU (unit variances only):
``rho/4 + (1/(2 pi)) (1/sqrt(4-rho^2) + rho arcsin(rho/2))``.
Every function returns None when the activation has no closed form here.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from sigprop.theory.errors import InputError

from .activations import Activation

__all__ = ["piecewise_linear_slopes", "pair_form", "pair_deriv_form", "unit_form"]

_TWO_PI = 2.0 * math.pi


def piecewise_linear_slopes(act: Activation) -> tuple[float, float] | None:
    """(b, a) = (slope for x > 0, slope for x < 0) when phi = b max(x,0) + a min(x,0), else None."""
    if act.name in ("identity", "relu", "leaky_relu", "abs") and act.is_builtin and act.slopes is not None:
        return float(act.slopes[0]), float(act.slopes[1])
    return None


def _rho(Kaa, Kab, Kbb):
    prod = Kaa * Kbb
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(prod > 0, Kab / np.sqrt(np.where(prod > 0, prod, 1.0)), 0.0)
    return np.clip(r, -1.0, 1.0)


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


def _step_unit(rho, order: int):
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


def _erf_unit(rho, order: int):
    rho = np.asarray(rho, dtype=float)
    q = 1.0 - 4.0 * rho * rho / 9.0
    if order == 0:
        return (2.0 / math.pi) * np.arcsin(2.0 * rho / 3.0)
    if order == 1:
        return (4.0 / (3.0 * math.pi)) / np.sqrt(q)
    if order == 2:
        return (4.0 / (3.0 * math.pi)) * (4.0 * rho / 9.0) / q**1.5
    raise InputError(f"order must be 0, 1 or 2, got {order!r}")


def _gelu_unit(rho, order: int):
    rho = np.asarray(rho, dtype=float)
    q = 4.0 - rho * rho
    if order == 0:
        return rho / 4.0 + (1.0 / _TWO_PI) * (1.0 / np.sqrt(q) + rho * np.arcsin(rho / 2.0))
    if order == 1:
        return 0.25 + (1.0 / _TWO_PI) * (rho / q**1.5 + np.arcsin(rho / 2.0) + rho / np.sqrt(q))
    if order == 2:
        return (1.0 / _TWO_PI) * (5.0 / q**1.5 + 3.0 * rho * rho / q**2.5 + 1.0 / np.sqrt(q))
    raise InputError(f"order must be 0, 1 or 2, got {order!r}")


def _check_order(order: int) -> None:
    if order not in (0, 1, 2):
        raise InputError(f"order must be 0, 1 or 2, got {order!r}")


def unit_form(act: Activation) -> Callable | None:
    """``f(rho, order)`` = d^order/drho^order E[phi(X) phi(Y)] (unit variances, unnormalised), or None."""
    if not act.is_builtin:
        return None
    pl = piecewise_linear_slopes(act)
    if pl is not None:
        b, a = pl
        return lambda rho, order=0: _pl_unit(b, a, rho, order)
    name = act.name
    if name == "step":
        return _step_unit
    if name == "erf":
        return _erf_unit
    if name == "gelu":
        return _gelu_unit
    if name == "exp":
        def f(rho, order=0):
            _check_order(order)
            return np.exp(1.0 + np.asarray(rho, dtype=float))
        return f
    if name in ("sin", "cos"):
        funcs = (np.sinh, np.cosh) if name == "sin" else (np.cosh, np.sinh)

        def f(rho, order=0):
            _check_order(order)
            return math.exp(-1.0) * funcs[order % 2](np.asarray(rho, dtype=float))
        return f
    return None


def pair_form(act: Activation) -> Callable | None:
    """``f(Kaa, Kab, Kbb)`` = <phi(u_a) phi(u_b)>_K (vectorised), or None when no closed form is known."""
    if not act.is_builtin:
        return None
    pl = piecewise_linear_slopes(act)
    if pl is not None:
        b, a = pl
        if a == b:
            return lambda Kaa, Kab, Kbb: a * a * Kab
        return lambda Kaa, Kab, Kbb: np.sqrt(Kaa * Kbb) * _pl_unit(b, a, _rho(Kaa, Kab, Kbb), 0)
    name = act.name
    if name == "step":
        return lambda Kaa, Kab, Kbb: np.where((Kaa > 0) & (Kbb > 0), _step_unit(_rho(Kaa, Kab, Kbb), 0), 0.0)
    if name == "erf":
        return lambda Kaa, Kab, Kbb: (2.0 / math.pi) * np.arcsin(
            np.clip(2.0 * Kab / np.sqrt((1.0 + 2.0 * Kaa) * (1.0 + 2.0 * Kbb)), -1.0, 1.0))
    if name == "exp":
        return lambda Kaa, Kab, Kbb: np.exp(0.5 * (Kaa + Kbb) + Kab)
    if name == "sin":
        return lambda Kaa, Kab, Kbb: np.exp(-0.5 * (Kaa + Kbb)) * np.sinh(Kab)
    if name == "cos":
        return lambda Kaa, Kab, Kbb: np.exp(-0.5 * (Kaa + Kbb)) * np.cosh(Kab)
    return None


def pair_deriv_form(act: Activation) -> Callable | None:
    """``f(Kaa, Kab, Kbb)`` = <phi'(u_a) phi'(u_b)>_K (vectorised), or None.  phi'(0) is the left slope
    (the convention of ``Activation.derivative``), which matters only when a variance is exactly 0."""
    if not act.is_builtin:
        return None
    pl = piecewise_linear_slopes(act)
    if pl is not None:
        b, a = pl

        def f(Kaa, Kab, Kbb):
            same = 0.25 + np.arcsin(_rho(Kaa, Kab, Kbb)) / _TWO_PI  # P(++) = P(--)
            both = same * (a * a + b * b) + (1.0 - 2.0 * same) * a * b
            one0 = a * 0.5 * (a + b)  # one variance zero: phi'(0) = a times E phi'(u)
            za, zb = Kaa <= 0, Kbb <= 0
            return np.where(za & zb, a * a, np.where(za | zb, one0, both))
        return f
    name = act.name
    if name == "erf":
        return lambda Kaa, Kab, Kbb: (4.0 / math.pi) / np.sqrt((1.0 + 2.0 * Kaa) * (1.0 + 2.0 * Kbb) - 4.0 * Kab * Kab)
    if name == "exp":
        return lambda Kaa, Kab, Kbb: np.exp(0.5 * (Kaa + Kbb) + Kab)
    if name == "sin":  # phi' = cos
        return lambda Kaa, Kab, Kbb: np.exp(-0.5 * (Kaa + Kbb)) * np.cosh(Kab)
    if name == "cos":  # phi' = -sin
        return lambda Kaa, Kab, Kbb: np.exp(-0.5 * (Kaa + Kbb)) * np.sinh(Kab)
    return None
