"""Exact Hermite coefficients c_k = E[phi(X) He_k(X)] / sqrt(k!) as SymPy expressions.

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
"""
from __future__ import annotations

from sigprop.theory.errors import InputError

from .activations import SELU_ALPHA, SELU_SCALE, Activation

__all__ = ["exact_hermite_coefficients", "piecewise_hermite"]


def _sp():
    import sympy

    return sympy


def _num(v):
    sp = _sp()
    return sp.nsimplify(v)


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


def piecewise_hermite(pieces, kmax: int):
    """c_0..c_kmax of phi = sum_i w_i x^n_i e^(beta_i x) on (lo_i, hi_i); pieces = [(w, n, beta, lo, hi), ...]."""
    sp = _sp()
    t = sp.Symbol("t", real=True)
    out = [sp.Integer(0)] * (kmax + 1)
    for (w, n, beta, lo, hi) in pieces:
        w, beta = sp.sympify(w), sp.sympify(beta)
        a = lo - beta if lo not in (sp.oo, -sp.oo) else lo
        b = hi - beta if hi not in (sp.oo, -sp.oo) else hi
        M = _gauss_moments(a, b, n + kmax)
        pref = w * sp.exp(beta**2 / 2)
        for k in range(kmax + 1):
            poly = sp.Poly(sp.expand((t + beta) ** n * sp.hermite_prob(k, t + beta)), t)
            val = sum(coef * M[m[0]] for m, coef in zip(poly.monoms(), poly.coeffs()))
            out[k] += pref * val
    return [sp.simplify(c / sp.sqrt(sp.factorial(k))) for k, c in enumerate(out)]


def _pieces(act: Activation):
    sp = _sp()
    oo, zero = sp.oo, sp.Integer(0)
    name, p = act.name, act.param_dict
    if name == "identity":
        return [(1, 1, 0, -oo, oo)]
    if name == "relu":
        return [(1, 1, 0, zero, oo)]
    if name == "leaky_relu":
        return [(1, 1, 0, zero, oo), (_num(p["slope"]), 1, 0, -oo, zero)]
    if name == "abs":
        return [(1, 1, 0, zero, oo), (-1, 1, 0, -oo, zero)]
    if name == "step":
        return [(1, 0, 0, zero, oo)]
    if name == "exp":
        return [(1, 0, 1, -oo, oo)]
    if name in ("elu", "selu"):
        a = _num(p["alpha"]) if name == "elu" else sp.Float(SELU_ALPHA, 30)
        s = 1 if name == "elu" else sp.Float(SELU_SCALE, 30)
        return [(s, 1, 0, zero, oo), (s * a, 0, 1, -oo, zero), (-s * a, 0, 0, -oo, zero)]
    if name == "celu":
        a = _num(p["alpha"])
        return [(1, 1, 0, zero, oo), (a, 0, 1 / a, -oo, zero), (-a, 0, 0, -oo, zero)]
    return None


def _stein(act: Activation, kmax: int):
    sp = _sp()
    name = act.name
    fact = sp.factorial
    if name in ("sin", "cos"):
        trig = sp.sin if name == "sin" else sp.cos
        return [sp.exp(-sp.Rational(1, 2)) * trig(k * sp.pi / 2) / sp.sqrt(fact(k)) for k in range(kmax + 1)]
    if name == "erf":
        out = []
        for k in range(kmax + 1):
            if k % 2 == 0:
                out.append(sp.Integer(0))
            else:
                j = (k - 1) // 2
                e = 2 / sp.sqrt(sp.pi) / sp.sqrt(3) * fact(2 * j) * sp.Rational(-1, 3) ** j / fact(j)
                out.append(sp.simplify(e / sp.sqrt(fact(k))))
        return out
    if name == "gelu":
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
    return None


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
    if act.is_builtin:
        pieces = _pieces(act)
        if pieces is not None:
            return tuple(piecewise_hermite(pieces, kmax))
        st = _stein(act, kmax)
        if st is not None:
            return tuple(st)
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
                         "it in closed form); exact forms exist for polynomials, identity, relu, leaky_relu, abs, "
                         "step, exp, elu, celu, selu, sin, cos, erf, gelu")
    out = []
    w = sp.exp(-x**2 / 2) / sp.sqrt(2 * sp.pi)
    for k in range(kmax + 1):
        val = sp.integrate(expr * sp.hermite_prob(k, x) * w, (x, -sp.oo, sp.oo))
        if val.has(sp.Integral):
            raise InputError(f"hermite_coefficients(exact=True): SymPy could not integrate {expr} He_{k}")
        out.append(sp.simplify(val / sp.sqrt(sp.factorial(k))))
    return tuple(out)
