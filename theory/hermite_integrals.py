"""Exact Hermite coefficients c_k = E[phi(X) He_k(X)] / sqrt(k!) as SymPy expressions: the formulas.

Methods (all exact; no numerical integration):
* piecewise exponential-polynomials ``sum_i w_i x^{n_i} e^{beta_i x} 1{x in (lo_i, hi_i)}`` with lo, hi in
  {-oo, 0, +oo}: identity, relu, leaky_relu, abs, step, exp, elu, celu, selu and every polynomial.  With
  ``x^n e^{beta x} phi(x) = e^{beta^2/2} x^n phi(x - beta)`` and ``t = x - beta`` the integral reduces to truncated
  Gaussian moments ``M_m(a, b) = int_a^b t^m phi(t) dt``: ``M_0 = Phi(b) - Phi(a)``, ``M_1 = phi(a) - phi(b)``,
  ``M_m = a^{m-1} phi(a) - b^{m-1} phi(b) + (m-1) M_{m-2}``;
* Stein's identity ``E[phi(X) He_k(X)] = E[phi^(k)(X)]``: sin/cos ``e^{-1/2} sin/cos(k pi/2)``,
  erf ``(2/sqrt(pi)) (1/sqrt 3) (2j)! (-1/3)^j / j!`` for k = 2j+1, GELU via ``x He_k = He_{k+1} + k He_{k-1}`` and
  ``E[Phi(X) He_m(X)] = E[phi_N^(m-1)(X)]``, ``E[He_n(X) phi_N(X)] = n! (-1/4)^{n/2} / ((n/2)! 2 sqrt(pi))``;
* a custom activation with a SymPy expression: polynomial -> exact moments; otherwise SymPy's ``integrate``.

A built-in's method is named by its registry entry (``hermite=`` in :mod:`sigprop.theory.activation_registry`),
which calls the helpers here: :func:`piecewise_hermite`, :func:`exp_linear_hermite`, :func:`trig_hermite`,
:func:`erf_hermite`, :func:`gelu_hermite`; :mod:`sigprop.theory.hermite_exact` dispatches on an activation.
"""
from __future__ import annotations

import math

__all__ = ["piecewise_hermite", "exp_linear_hermite", "trig_hermite", "erf_hermite", "gelu_hermite", "exact_number",
           "exact_float"]

_INF = math.inf


def _sp():
    import sympy

    return sympy


def exact_number(v: float):
    """The simplest exact SymPy number equal to the float ``v`` (``nsimplify``): 0.2 -> 1/5."""
    return _sp().nsimplify(v)


def exact_float(v: float):
    """The float ``v`` as a 30-digit SymPy Float (for irrational constants such as SELU's)."""
    return _sp().Float(v, 30)


def _gauss_moments(a, b, mmax: int):
    """[M_0..M_mmax] for int_a^b t^m phi(t) dt; a, b SymPy numbers or +-oo."""
    sp = _sp()
    pdf = lambda t: sp.exp(-t**2 / 2) / sp.sqrt(2 * sp.pi)  # noqa: E731
    cdf = lambda t: (1 + sp.erf(t / sp.sqrt(2))) / 2  # noqa: E731

    def bnd(t, m):  # t^(m-1) phi(t), 0 at infinity
        if t in (sp.oo, -sp.oo):
            return sp.Integer(0)
        return t ** (m - 1) * pdf(t)

    M = [(1 if b == sp.oo else cdf(b)) - (0 if a == -sp.oo else cdf(a))]
    if mmax >= 1:
        M.append(bnd(a, 1) - bnd(b, 1))
    for m in range(2, mmax + 1):
        M.append(bnd(a, m) - bnd(b, m) + (m - 1) * M[m - 2])
    return M


def _bound(v):
    """A piece's end as SymPy: 0 -> Integer(0), +-inf -> +-oo (SymPy numbers pass through)."""
    sp = _sp()
    if isinstance(v, float) and math.isinf(v):
        return sp.oo if v > 0 else -sp.oo
    return sp.sympify(v)


def piecewise_hermite(pieces, kmax: int):
    """c_0..c_kmax of phi = sum_i w_i x^n_i e^(beta_i x) on (lo_i, hi_i); pieces = [(w, n, beta, lo, hi), ...].

    ``w`` and ``beta`` are exact numbers (Python ints or SymPy numbers: see :func:`exact_number`); ``lo``, ``hi``
    are each -inf, 0 or +inf (``math.inf`` or SymPy's ``oo``).

    Examples
    --------
    >>> piecewise_hermite([(1, 1, 0, 0, math.inf)], 2)  # relu
    [sqrt(2)/(2*sqrt(pi)), 1/2, 1/(2*sqrt(pi))]
    """
    sp = _sp()
    t = sp.Symbol("t", real=True)
    out = [sp.Integer(0)] * (kmax + 1)
    for (w, n, beta, lo, hi) in pieces:
        w, beta = sp.sympify(w), sp.sympify(beta)
        lo, hi = _bound(lo), _bound(hi)
        a = lo - beta if lo not in (sp.oo, -sp.oo) else lo
        b = hi - beta if hi not in (sp.oo, -sp.oo) else hi
        M = _gauss_moments(a, b, n + kmax)
        pref = w * sp.exp(beta**2 / 2)
        for k in range(kmax + 1):
            poly = sp.Poly(sp.expand((t + beta) ** n * sp.hermite_prob(k, t + beta)), t)
            val = sum(coef * M[m[0]] for m, coef in zip(poly.monoms(), poly.coeffs()))
            out[k] += pref * val
    return [sp.simplify(c / sp.sqrt(sp.factorial(k))) for k, c in enumerate(out)]


def exp_linear_hermite(s, a, b, kmax: int):
    """c_0..c_kmax of ``phi = s x`` for x > 0, ``s a (e^(b x) - 1)`` for x < 0 (elu, celu, selu), SymPy numbers."""
    return piecewise_hermite([(s, 1, 0, 0, _INF), (s * a, 0, b, -_INF, 0), (-s * a, 0, 0, -_INF, 0)], kmax)


def trig_hermite(kind: str, kmax: int):
    """c_k of sin (``kind='sin'``) or cos: ``e^(-1/2) sin/cos(k pi/2) / sqrt(k!)`` (Stein's identity)."""
    sp = _sp()
    trig = sp.sin if kind == "sin" else sp.cos
    return [sp.exp(-sp.Rational(1, 2)) * trig(k * sp.pi / 2) / sp.sqrt(sp.factorial(k)) for k in range(kmax + 1)]


def erf_hermite(kmax: int):
    """c_k of erf: 0 for even k, ``(2/sqrt(pi)) (1/sqrt 3) (2j)! (-1/3)^j / j! / sqrt(k!)`` for k = 2j+1."""
    sp = _sp()
    fact = sp.factorial
    out = []
    for k in range(kmax + 1):
        if k % 2 == 0:
            out.append(sp.Integer(0))
        else:
            j = (k - 1) // 2
            e = 2 / sp.sqrt(sp.pi) / sp.sqrt(3) * fact(2 * j) * sp.Rational(-1, 3) ** j / fact(j)
            out.append(sp.simplify(e / sp.sqrt(fact(k))))
    return out


def gelu_hermite(kmax: int):
    """c_k of GELU (erf form), via ``x He_k = He_{k+1} + k He_{k-1}`` and Stein's identity."""
    sp = _sp()
    fact = sp.factorial

    def he_phi(n):  # E[He_n(X) phi_N(X)]
        if n % 2:
            return sp.Integer(0)
        return fact(n) * sp.Rational(-1, 4) ** (n // 2) / fact(n // 2) / (2 * sp.sqrt(sp.pi))

    def G(m):  # E[Phi(X) He_m(X)]
        return sp.Rational(1, 2) if m == 0 else (-1) ** (m - 1) * he_phi(m - 1)

    out = []
    for k in range(kmax + 1):
        e = G(k + 1) + (k * G(k - 1) if k >= 1 else 0)
        out.append(sp.simplify(e / sp.sqrt(fact(k))))
    return out
