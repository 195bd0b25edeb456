"""Activations defined by a polynomial or a SymPy expression (exact Hermite coefficients then come for free).

``polynomial_activation([a0, a1, ...])`` is phi(x) = a0 + a1 x + a2 x^2 + ...;
``sympy_activation("x**3 - x")`` (a string or a SymPy expression in one symbol) lambdifies phi and phi' for NumPy.
Declare kinks (points where phi is not smooth) yourself for non-smooth expressions.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from sigprop.theory.errors import InputError

from .activations import Activation, custom_activation

__all__ = ["polynomial_activation", "sympy_activation"]


def polynomial_activation(coeffs: Sequence[float], *, name: str = "polynomial") -> Activation:
    """phi(x) = sum_i coeffs[i] x^i (coefficients in increasing degree; at least one non-zero)."""
    c = [float(v) for v in coeffs]
    if not c or not all(math.isfinite(v) for v in c):
        raise InputError("polynomial_activation: coeffs must be a non-empty sequence of finite numbers")
    if all(v == 0.0 for v in c):
        raise InputError("polynomial_activation: the zero polynomial has E[phi^2] = 0")
    ct = tuple(c)
    dc = tuple(i * v for i, v in enumerate(ct))[1:] or (0.0,)

    def fn(x):
        return np.polynomial.polynomial.polyval(np.asarray(x, dtype=float), ct)

    def deriv(x):
        return np.polynomial.polynomial.polyval(np.asarray(x, dtype=float), dc)

    def scalar(x):
        acc = 0.0
        for i in range(len(ct) - 1, -1, -1):
            acc = acc * x + ct[i]
        return acc

    def sympy_expr(x):
        import sympy as sp

        return sum(sp.nsimplify(v) * x**i for i, v in enumerate(ct))

    odd = all(v == 0.0 for i, v in enumerate(ct) if i % 2 == 0)
    even = all(v == 0.0 for i, v in enumerate(ct) if i % 2 == 1)
    parity = "odd" if odd else ("even" if even else None)
    label = name if name != "polynomial" else "polynomial(" + ", ".join(f"{v:g}" for v in ct) + ")"
    return custom_activation(fn, name=label, derivative=deriv, sympy_expr=sympy_expr, scalar=scalar, parity=parity)


def sympy_activation(expr: Any, *, name: str | None = None, kinks: Sequence[float] = (),
                     parity: str | None = None) -> Activation:
    """phi given by a SymPy expression (or a string SymPy can parse) in a single symbol."""
    import sympy as sp

    e = sp.sympify(expr) if isinstance(expr, str) else expr
    syms = sorted(e.free_symbols, key=str)
    if len(syms) != 1:
        raise InputError(f"sympy_activation: the expression must depend on exactly one symbol, got {syms}")
    x = syms[0]
    f_np = sp.lambdify(x, e, modules="numpy")
    d_np = sp.lambdify(x, sp.diff(e, x), modules="numpy")

    def fn(v):
        v = np.asarray(v, dtype=float)
        return np.broadcast_to(np.asarray(f_np(v), dtype=float), v.shape).copy()

    def deriv(v):
        v = np.asarray(v, dtype=float)
        return np.broadcast_to(np.asarray(d_np(v), dtype=float), v.shape).copy()

    f_math = sp.lambdify(x, e, modules="math")

    def builder(s):
        return e.subs(x, s)

    return custom_activation(fn, name=name or str(e), derivative=deriv, kinks=tuple(kinks), sympy_expr=builder,
                             scalar=f_math, parity=parity)
