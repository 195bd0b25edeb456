"""Exact Hermite coefficients c_k = E[phi(X) He_k(X)] / sqrt(k!) of an activation, as SymPy expressions.

A built-in's registry entry (:mod:`sigprop.theory.activation_registry`) gives its exact coefficients
(``hermite=``, from the formulas of :mod:`sigprop.theory.hermite_integrals`: truncated Gaussian moments of
piecewise exponential-polynomials, Stein's identity); a custom activation with a SymPy expression gets exact
moments when it is a polynomial, and SymPy's ``integrate`` otherwise.
"""
from __future__ import annotations

from sigprop.theory.errors import InputError

from .activations import Activation
from .hermite_integrals import piecewise_hermite

__all__ = ["exact_hermite_coefficients"]


def _sp():
    import sympy

    return sympy


def exact_hermite_coefficients(act: Activation, kmax: int) -> list:
    """[c_0, ..., c_kmax] as SymPy expressions; ValueError when no exact method applies."""
    return list(_cached(act, kmax))


def _cached(act: Activation, kmax: int):
    key = (act.name, act.params, act.code) if act.is_builtin else None
    if key is not None:
        return _cached_builtin(key, kmax, act)
    return _compute(act, kmax)


_CACHE: dict = {}


def _cached_builtin(key, kmax, act):
    hit = _CACHE.get(key)
    if hit is not None and len(hit) > kmax:
        return hit[: kmax + 1]
    val = _compute(act, kmax)
    _CACHE[key] = val
    return val


def _compute(act: Activation, kmax: int):
    sp = _sp()
    if act.entry is not None and act.entry.hermite is not None:
        return tuple(act.entry.hermite(kmax, **act.param_dict))
    expr = act.sympy()
    if expr is None:
        raise InputError(f"hermite_coefficients(exact=True): {act.label} has no SymPy expression")
    x = sorted(expr.free_symbols, key=str)
    if len(x) != 1:
        raise InputError(f"hermite_coefficients(exact=True): expression {expr} must depend on exactly one symbol")
    x = x[0]
    if expr.is_polynomial(x):
        poly = sp.Poly(sp.expand(expr), x)
        pieces = [(c, m[0], 0, -sp.oo, sp.oo) for m, c in zip(poly.monoms(), poly.coeffs())]
        return tuple(piecewise_hermite(pieces, kmax))
    if act.is_builtin:
        raise InputError(f"hermite_coefficients(exact=True): no exact form for {act.label} (SymPy cannot integrate "
                         "it in closed form); exact forms exist for polynomials and for the built-ins whose entry in "
                         "sigprop.theory.activation_registry gives hermite=")
    out = []
    w = sp.exp(-x**2 / 2) / sp.sqrt(2 * sp.pi)
    for k in range(kmax + 1):
        val = sp.integrate(expr * sp.hermite_prob(k, x) * w, (x, -sp.oo, sp.oo))
        if val.has(sp.Integral):
            raise InputError(f"hermite_coefficients(exact=True): SymPy could not integrate {expr} He_{k}")
        out.append(sp.simplify(val / sp.sqrt(sp.factorial(k))))
    return tuple(out)
