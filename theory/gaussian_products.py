"""Gaussian expectations of products of up to four activations (or their derivatives) of correlated preactivations.

:func:`product_expectation` returns ``E[f_1(z_1) ... f_k(z_k)]`` for ``z ~ N(0, K)``, ``k <= 4``, each factor
``f_i = phi_i^(d_i)`` an activation of the registry (or a custom one) or its derivative of order ``d_i``.  ``K`` may
be singular (repeated inputs such as ``<phi_a phi_a phi_b phi_b>``, zero variances); this is how polynomial weights
enter: ``E[phi(z_a) phi(z_b) z_a z_b]`` is the product of four factors with ``('identity', 0)`` on copies of ``a``
and ``b``.

Method (fixed rules, no adaptive cubature):

1. Products of ``identity`` factors only (polynomials of the preactivations): Isserlis' theorem, exact.
2. Otherwise ``K = L L^T`` by pivoted Cholesky with numerical rank ``r`` (a pivot whose residual variance is below
   ``1e-12 max_i K_ii`` ends the factorisation: those directions are treated as exactly dependent), and
   ``z = L x`` with ``x ~ N(0, I_r)``; variable ``i`` lives on *level* ``l(i)``, the last column its row of ``L`` uses
   (``L`` is lower-trapezoidal in the pivot order).  The expectation is a nested integral over ``x_0, ..., x_{r-1}``.
   On each level the integrand is smooth in ``x_m`` except where a factor of that level has a kink
   (``L_i . x = c``), or where two such breakpoints of an inner level cross (a finite-order kink of the inner
   integral, an affine form in the outer variables found by eliminating ``x_m``; found recursively, "virtual
   kinks").  Every level uses composite Gauss-Legendre on ``[-9, 9]`` (Gaussian mass beyond: 2e-19) with fixed panel
   edges plus these breakpoints, so the rule converges spectrally for piecewise-analytic factors; a level without
   breakpoints (smooth factors) uses one fixed rule for all outer nodes.  ``nodes`` per panel (12) at rank 3 and 4,
   twice that at rank 2 and three times at rank 1, where it costs little.
3. The innermost level, when it holds one factor with a known Gaussian smoothing ``psi(a, s) = E[f(a + s xi)]``
   (identity, ReLU family, erf, GELU, exp, sin, cos, and their first derivatives), is done in closed form, so a
   product of four such factors is a 3-D rule of smooth functions.

4. Factors ``exp`` (any derivative order) are taken out exactly by the Gaussian change of measure
   ``E[e^{1_S . z} g(z)] = e^{1_S^T K 1_S / 2} E[g(z + K 1_S)]`` (``S``: the exp factors): the remaining factors are
   integrated with shifted arguments, so the fixed range never misses the peak of a growing integrand whatever the
   variance.  Every other registered activation grows at most linearly, so its integrand's peak stays inside the
   range at any scale; a custom activation is refused (before any work) at a variance where ``|f(z)| phi`` at the
   edge of the range is above ``1e-13`` of its peak (the message gives the largest variance allowed).

Accuracy (tests/test_gaussian_products.py): closed forms and Isserlis exact to rounding; against arc-cosine and
arcsine closed forms, the 3-D orthant formula, ``E[Phi(xi)^4] = 1/5`` and mpmath references, 1e-12 relative or
better for variances in [0.05, 10]; a doubled rule agrees to ~1e-13 for tanh, sigmoid, silu, gelu_tanh, elu.
Beyond that range (a saturating activation at variance >> 10) the panels resolve the transition less well.
Costs: 2-D ~1 ms, 3-D ~10-50 ms, 4-D with a closed-form innermost factor ~0.1 s, 4-D tanh ~ a few seconds.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
from scipy import special

from sigprop.theory.arguments import integer_in_range, real_array
from sigprop.theory.errors import InputError, InputTypeError

from .activations import Activation, as_activation

__all__ = ["product_expectation"]

_R = 9.0
_EDGES = np.array([-9.0, -5.5, -3.0, -1.5, 0.0, 1.5, 3.0, 5.5, 9.0])
_NODES = 12
_RANK_TOL = 1e-12
_CHUNK = 2_000_000
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_MAX_FACTORS = 4
_TAIL_TOL = 1e-13
_LOG_MAX = math.log(np.finfo(float).max)


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def _check_factor(item, i: int) -> tuple[Activation, int]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise InputTypeError(f"factors[{i}] must be a pair (activation, derivative order), got {item!r}")
    act, order = item
    phi = as_activation(act, argname=f"factors[{i}][0]")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 0 <= order <= 2:
        raise InputError(f"factors[{i}][1] (derivative order) must be 0, 1 or 2, got {order!r}")
    order = int(order)
    if order >= 1 and phi.jumps:
        raise InputError(f"factors[{i}]: {phi.label} jumps at {phi.jumps}; its derivative of order {order} is a "
                         f"delta mass, not a function (allowed: order 0)")
    if order == 2 and phi.kinks:
        raise InputError(f"factors[{i}]: {phi.label} has kinks at {phi.kinks}; its second derivative is a delta "
                         f"mass there (allowed orders: 0, 1)")
    if order == 2 and phi.sympy_builder is None:
        raise InputError(f"factors[{i}]: the second derivative of {phi.label} needs a SymPy form (allowed: 0, 1)")
    return phi, order


def _check_K(K, k: int) -> np.ndarray:
    """``K`` as a finite, symmetric, PSD float64 (k, k) matrix (:func:`sigprop.theory.arguments.real_array`: complex,
    bool, strings, NaN and inf refused), else an error naming ``K``, the allowed range and the offending value."""
    given = real_array(K, "K", None, 2)
    if given.shape != (k, k):
        raise InputError(f"K must be a ({k}, {k}) matrix (one row per factor), got shape {given.shape}")
    scale = float(np.max(np.abs(np.diag(given)))) if k else 0.0
    if not np.allclose(given, given.T, rtol=1e-12, atol=1e-14 * max(scale, 1e-300)):
        raise InputError("K must be symmetric")
    with np.errstate(over="ignore"):
        A = 0.5 * (given + given.T)
    if not np.all(np.isfinite(A)):
        raise InputError(f"K must have entries below half the float64 maximum (~9e307) in magnitude, got "
                         f"max |K_ij| = {float(np.max(np.abs(given))):.3g}")
    if np.any(np.diag(A) < 0):
        i = int(np.argmin(np.diag(A)))
        raise InputError(f"K must be positive semi-definite (variances >= 0), got K[{i}, {i}] = {float(A[i, i])!r}")
    if scale > 0:
        low = float(np.linalg.eigvalsh(A)[0])
        if low < -1e-10 * scale:
            raise InputError(f"K must be positive semi-definite (eigenvalues >= -1e-10 max_i K_ii = "
                             f"{-1e-10 * scale:.3g}), got most negative eigenvalue {low:.6g}")
    return A


def _tail_ratio(f: Callable[[np.ndarray], np.ndarray], s: float) -> float:
    """``|f(s x)| phi(x)`` at the edges ``x = +-R`` of the integration range over its largest value on the rule's
    nodes (inf when ``f`` overflows or is not finite there)."""
    x = np.concatenate([[-_R, _R], _fixed_rule(_NODES)[0][0]])
    with np.errstate(all="ignore"):
        g = np.abs(np.asarray(f(s * x), dtype=float)) * _npdf(x)
    peak = float(np.max(g))
    if not (np.all(np.isfinite(g)) and peak > 0.0):
        return 0.0 if np.all(g == 0.0) else math.inf
    return float(np.max(g[:2])) / peak


def _largest_variance(f: Callable[[np.ndarray], np.ndarray], s: float) -> float:
    """The largest variance below ``s^2`` at which :func:`_tail_ratio` is within ``_TAIL_TOL`` (bisection in
    ``log s``; 0 when even ``s = 1e-8`` fails)."""
    lo, hi = math.log(1e-8), math.log(s)
    if not _tail_ratio(f, math.exp(lo)) <= _TAIL_TOL:
        return 0.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _tail_ratio(f, math.exp(mid)) <= _TAIL_TOL else (lo, mid)
    return math.exp(2.0 * lo)


def _check_growth(checked: list[tuple[Activation, int]], A: np.ndarray) -> None:
    """Refuse a custom activation whose growth moves the integrand's peak out of the fixed range ``[-R, R]``
    standard deviations at its variance ``K_ii`` (registered activations: exp is exact, the others grow at most
    linearly)."""
    for i, (phi, d) in enumerate(checked):
        s = math.sqrt(float(A[i, i]))
        if phi.is_builtin or s == 0.0:
            continue
        f = _value_fn(phi, d)
        ratio = _tail_ratio(f, s)
        if not ratio <= _TAIL_TOL:
            raise InputError(
                f"K: factors[{i}] ({phi.label}, order {d}) grows too fast for the integration range of +-{_R:g} "
                f"standard deviations at variance K[{i}, {i}] = {s * s:.6g} (|f(z)| times the Gaussian density at "
                f"the edge is {ratio:.3g} of its peak, allowed <= {_TAIL_TOL:g}); allowed: K[{i}, {i}] <= "
                f"{_largest_variance(f, s):.4g}")


# --------------------------------------------------------------------------------------------
# factor functions: values, and Gaussian smoothings psi(a, s) = E[f(a + s xi)] where known
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _second_derivative(phi: Activation) -> Callable[[np.ndarray], np.ndarray]:
    import sympy as sp

    x = sp.Symbol("x", real=True)
    fn = sp.lambdify(x, sp.diff(phi.sympy(x), x, 2), modules=["numpy", "scipy"])
    return lambda u: np.broadcast_to(np.asarray(fn(u), dtype=float), np.shape(u))


def _value_fn(phi: Activation, order: int) -> Callable[[np.ndarray], np.ndarray]:
    if order == 0:
        return phi.fn
    if order == 1:
        return phi.deriv
    return _second_derivative(phi)


def _npdf(x):
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def _ncdf(x):
    return special.ndtr(x)


def _smooth_slopes(ap: float, am: float, order: int):
    """psi for phi = ap max(x, 0) + am min(x, 0)."""
    if order == 0:
        def psi(a, s):
            pos = a * _ncdf(a / s) + s * _npdf(a / s)
            return ap * pos + am * (a - pos)
    elif order == 1:
        def psi(a, s):
            return ap * _ncdf(a / s) + am * _ncdf(-a / s)
    else:  # identity only (no kink)
        def psi(a, s):
            return np.zeros_like(a)
    return psi


def _smooth_erf(order: int):
    if order == 0:
        return lambda a, s: special.erf(a / np.sqrt(1.0 + 2.0 * s * s))
    if order == 1:
        return lambda a, s: (2.0 / math.sqrt(math.pi)) * np.exp(-a * a / (1.0 + 2.0 * s * s)) / np.sqrt(
            1.0 + 2.0 * s * s)
    return None


def _smooth_gelu(order: int):
    if order == 0:
        def psi(a, s):
            t = np.sqrt(1.0 + s * s)
            return a * _ncdf(a / t) + s * s * _npdf(a / t) / t
        return psi
    if order == 1:
        def psi1(a, s):
            t = np.sqrt(1.0 + s * s)
            return _ncdf(a / t) + a * _npdf(a / t) / t**3
        return psi1
    return None


def _smooth_trig(name: str, order: int):
    # d^order of sin is sin(x + order pi/2); of cos, cos(x + order pi/2); E[sin(a + s xi)] = sin(a) e^{-s^2/2}
    base = np.sin if name == "sin" else np.cos
    return lambda a, s: base(a + order * 0.5 * math.pi) * np.exp(-0.5 * s * s)


def _smoothing(phi: Activation, order: int):
    """``psi(a, s) = E[phi^(order)(a + s xi)]`` in closed form, or None."""
    if phi.slopes is not None:
        if order == 2 and not phi.is_linear:
            return None
        return _smooth_slopes(float(phi.slopes[0]), float(phi.slopes[1]), order)
    if not phi.is_builtin:
        return None
    if phi.name == "erf":
        return _smooth_erf(order)
    if phi.name == "gelu":
        return _smooth_gelu(order)
    if phi.name == "exp":
        return lambda a, s: np.exp(a + 0.5 * s * s)
    if phi.name in ("sin", "cos"):
        return _smooth_trig(phi.name, order)
    return None


# --------------------------------------------------------------------------------------------
# exact path: polynomials (Isserlis)
# --------------------------------------------------------------------------------------------
def _isserlis(K: np.ndarray, idx: tuple[int, ...]) -> float:
    """E[z_idx0 ... z_idxm] for z ~ N(0, K): sum over perfect pairings."""
    if not idx:
        return 1.0
    if len(idx) % 2:
        return 0.0
    first, rest = idx[0], idx[1:]
    return float(sum(K[first, rest[j]] * _isserlis(K, rest[:j] + rest[j + 1:]) for j in range(len(rest))))


# --------------------------------------------------------------------------------------------
# nested Gauss-Legendre with breakpoints
# --------------------------------------------------------------------------------------------
def _pivoted_cholesky(K: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """``L`` (k, r) with ``K = L L^T`` (to the rank tolerance) and the pivot order (variable of column j)."""
    k = K.shape[0]
    scale = float(np.max(np.diag(K)))
    L = np.zeros((k, k))
    resid = np.diag(K).astype(float).copy()
    piv: list[int] = []
    for j in range(k):
        cand = [i for i in range(k) if i not in piv]
        p = max(cand, key=lambda i: resid[i])
        if not resid[p] > _RANK_TOL * scale:
            break
        piv.append(p)
        L[p, j] = math.sqrt(resid[p])
        for i in cand:
            if i != p:
                L[i, j] = (K[i, p] - L[i, :j] @ L[p, :j]) / L[p, j]
                resid[i] = K[i, i] - L[i, :j + 1] @ L[i, :j + 1]
    r = len(piv)
    return L[:, :r], piv


def _levels(L: np.ndarray) -> np.ndarray:
    """Level of each variable: the last column of its row of ``L`` that is not zero (-1 for a zero row)."""
    k, r = L.shape
    out = np.full(k, -1)
    for i in range(k):
        nz = np.nonzero(np.abs(L[i]) > 0.0)[0]
        if nz.size:
            out[i] = nz[-1]
    return out


def _normalised(v: np.ndarray, c: float) -> tuple[tuple[float, ...], float]:
    """An affine form ``v . x = c`` scaled so its last coefficient is 1 (rounded, for de-duplication)."""
    vm = v[-1]
    return tuple(np.round(v / vm, 13).tolist()), round(c / vm, 13)


def _breakpoint_forms(L: np.ndarray, lev: np.ndarray, kinks: list[tuple[float, ...]], r: int) -> list[list]:
    """Per level m, the affine forms ``(v, c)`` (``v`` of length m+1, ``v[m] = 1``) where the level-m integrand
    breaks: kinks of the level's factors, and the crossings of two breakpoints of an inner level, eliminated."""
    forms: list[set] = [set() for _ in range(r)]
    for i in range(L.shape[0]):
        m = lev[i]
        if m < 0:
            continue
        for c in kinks[i]:
            forms[m].add(_normalised(L[i, :m + 1], c))
    for m in range(r - 1, 0, -1):
        fl = sorted(forms[m])
        for a in range(len(fl)):
            for b in range(a + 1, len(fl)):
                u = np.asarray(fl[a][0][:m]) - np.asarray(fl[b][0][:m])
                d = fl[a][1] - fl[b][1]
                tol = 1e-12 * max(1.0, float(np.max(np.abs(fl[a][0]))), float(np.max(np.abs(fl[b][0]))))
                nz = np.nonzero(np.abs(u) > tol)[0]
                if nz.size == 0:
                    continue  # parallel breakpoints never cross (or coincide)
                j = nz[-1]
                forms[j].add(_normalised(u[:j + 1], d))
    return [[(np.asarray(v), c) for v, c in sorted(f)] for f in forms]


@lru_cache(maxsize=None)
def _fixed_rule(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """The rule on the fixed panels alone, (1, Q) nodes and weights with the Gaussian density."""
    t, w = np.polynomial.legendre.leggauss(nodes)
    h = 0.5 * np.diff(_EDGES)
    x = (0.5 * (_EDGES[1:] + _EDGES[:-1]))[:, None] + h[:, None] * t
    wt = h[:, None] * w
    return x.reshape(1, -1), (wt.reshape(1, -1) * _npdf(x.reshape(1, -1)))


def _level_rule(forms: list, X: np.ndarray, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (Gaussian density included) of level m = X.shape[1]: (M, Q) per outer row, or (1, Q)
    shared by all rows when the level has no breakpoint."""
    if not forms:
        x, w = _fixed_rule(nodes)
        return x, w.copy()
    M, m = X.shape
    V = np.stack([v[:m] for v, _ in forms], axis=1)  # (m, nb)
    c = np.array([cc for _, cc in forms])
    bp = np.clip(c[None, :] - X @ V, -_R, _R) if m else np.broadcast_to(np.clip(c, -_R, _R), (M, len(forms)))
    edges = np.sort(np.concatenate([np.broadcast_to(_EDGES, (M, _EDGES.size)), bp], axis=1), axis=1)
    t, w = np.polynomial.legendre.leggauss(nodes)
    lo, hi = edges[:, :-1], edges[:, 1:]
    h = 0.5 * (hi - lo)
    x = ((0.5 * (hi + lo))[..., None] + h[..., None] * t).reshape(M, -1)
    wt = (h[..., None] * w).reshape(M, -1) * _npdf(x)
    return x, wt


class _Plan:
    """The factorisation, the breakpoint forms and the factor functions of one expectation.

    Each factor is evaluated once on its own level (its value depends on ``x_0 .. x_l(i)`` only) and multiplied into
    the running weights; rows whose weight is below ``1e-17`` of the largest are dropped before they are expanded
    (they change the result by less than 1e-13 relative for factors of polynomial growth)."""

    def __init__(self, fns, smooth, L, lev, forms, nodes):
        self.fns, self.smooth, self.L, self.lev, self.forms, self.nodes = fns, smooth, L, lev, forms, nodes
        self.r = L.shape[1]
        inner = [i for i in range(len(fns)) if lev[i] == self.r - 1]
        self.closed = inner[0] if len(inner) == 1 and smooth[inner[0]] is not None else None
        self.at_level = [[i for i in range(len(fns)) if lev[i] == m and i != self.closed] for m in range(self.r)]

    def integrate(self, X: np.ndarray, W: np.ndarray) -> float:
        m = X.shape[1]
        if self.closed is not None and m == self.r - 1:
            i = self.closed
            return float(np.sum(W * self.smooth[i](X @ self.L[i, :m], self.L[i, m])))
        x, w = _level_rule(self.forms[m], X, self.nodes)
        w = w * W[:, None]
        for i in self.at_level[m]:
            w *= self.fns[i]((X @ self.L[i, :m])[:, None] + self.L[i, m] * x)
        if m == self.r - 1:
            return float(np.sum(w))
        keep = w.ravel() > 1e-17 * np.max(np.abs(w)) if w.size else np.zeros(0, bool)
        keep |= w.ravel() < -1e-17 * np.max(np.abs(w))
        x = np.broadcast_to(x, w.shape)
        rows = np.repeat(np.arange(X.shape[0]), x.shape[1])[keep]
        xs, ws = x.ravel()[keep], w.ravel()[keep]
        Q = x.shape[1]
        step = max(1, _CHUNK // (Q ** max(self.r - m - 2, 0) * Q))
        total = 0.0
        for s in range(0, rows.size, step):
            Xn = np.concatenate([X[rows[s:s + step]], xs[s:s + step, None]], axis=1)
            total += self.integrate(Xn, ws[s:s + step])
        return total


def product_expectation(factors: Sequence[tuple], K, *, nodes: int = _NODES) -> float:
    """``E[prod_i phi_i^(d_i)(z_i)]`` for ``z ~ N(0, K)``, up to four factors, ``K`` possibly singular.

    Parameters
    ----------
    factors : sequence of (activation, int)
        One pair per Gaussian variable: an activation (a name or an :class:`Activation`) and the order of its
        derivative (0, 1, or 2 for activations without kinks).  1 to 4 factors.
    K : array_like, shape (k, k)
        The covariance of ``(z_1, ..., z_k)``: finite, symmetric, positive semi-definite.
    nodes : int, optional
        Gauss-Legendre nodes per panel (default 12; doubling it is the error check used in the tests).

    Returns
    -------
    float
        The expectation: exact for polynomials (Isserlis), otherwise a nested fixed rule split at every kink and
        every crossing of kinks (module docstring), ~1e-12 relative for variances in [0.05, 10].

    Raises
    ------
    InputError
        No factor or more than four; an unknown activation; a derivative order outside 0..2 or one that is a delta
        mass (order >= 1 of a jump, order 2 of a kink); K not a real (k, k) matrix, not finite, not symmetric or
        not PSD (the message gives the most negative eigenvalue); an expectation beyond the float64 range.

    Examples
    --------
    >>> K = np.array([[1.0, 0.5], [0.5, 2.0]])
    >>> product_expectation([("identity", 0)] * 2, K)  # E[z_1 z_2] = K_12
    0.5
    >>> theta = np.arccos(0.5 / np.sqrt(2.0))  # the arc-cosine kernel of ReLU
    >>> ref = np.sqrt(2.0) * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    >>> bool(abs(product_expectation([("relu", 0), ("relu", 0)], K) - ref) < 1e-13)
    True
    """
    if isinstance(factors, (str, bytes)) or not isinstance(factors, Sequence):
        raise InputTypeError(f"factors must be a sequence of (activation, order) pairs, got {factors!r}")
    k = len(factors)
    if not 1 <= k <= _MAX_FACTORS:
        raise InputError(f"factors must hold 1 to {_MAX_FACTORS} (activation, order) pairs, got {k}")
    nodes = integer_in_range("nodes", nodes, 2, 64)
    checked = [_check_factor(item, i) for i, item in enumerate(factors)]
    A = _check_K(K, k)
    _check_growth(checked, A)
    if all(phi.is_linear for phi, _ in checked) and any(d == 2 for _, d in checked):
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below, not warned
        if all(phi.is_linear for phi, _ in checked):
            value = _isserlis(A, tuple(i for i, (_, d) in enumerate(checked) if d == 0))
        else:
            value = _nested(checked, A, nodes)
    if not math.isfinite(value):
        raise InputError(f"K: the expectation leaves the float64 range at this scale (max variance "
                         f"{float(np.max(np.diag(A))):.3g}), got {value!r}")
    return value


def _is_exp(phi: Activation) -> bool:
    return phi.is_builtin and phi.name == "exp"


def _nested(checked: list[tuple[Activation, int]], A: np.ndarray, nodes: int) -> float:
    """The expectation by the nested rule, the exp factors taken out by the change of measure (module docstring)."""
    tilt = [i for i, (phi, _) in enumerate(checked) if _is_exp(phi)]
    if not tilt:
        return _integrate(checked, A, nodes, None)
    rest = [i for i in range(len(checked)) if i not in tilt]
    log_scale = 0.5 * float(np.sum(A[np.ix_(tilt, tilt)]))
    if rest:
        mu = np.sum(A[np.ix_(rest, tilt)], axis=1)
        value = _integrate([checked[i] for i in rest], A[np.ix_(rest, rest)], nodes, mu)
    else:
        value = 1.0
    if value == 0.0 or log_scale + math.log(abs(value)) < _LOG_MAX:
        return value * math.exp(log_scale) if log_scale < _LOG_MAX else math.copysign(
            math.exp(log_scale + math.log(abs(value))), value)
    raise InputError(f"K: the exp factors give e^(1_S^T K 1_S / 2) = e^{log_scale:.6g} (S: factors {tilt}) times "
                     f"{value:.6g}; the expectation leaves the float64 range (allowed: below e^{_LOG_MAX:.6g})")


def _shift(f: Callable, m: float) -> Callable:
    return lambda u: f(u + m)


def _shift_smooth(psi: Callable, m: float) -> Callable:
    return lambda a, s: psi(a + m, s)


def _integrate(checked: list[tuple[Activation, int]], A: np.ndarray, nodes: int, mu: np.ndarray | None) -> float:
    """``E[prod_i f_i(z_i + mu_i)]``, ``z ~ N(0, A)``, by the nested rule (``mu = None``: no shift)."""
    fns = [_value_fn(phi, d) for phi, d in checked]
    smooth_all = [_smoothing(*c) for c in checked]
    kinks_all = [tuple(sorted(phi.kinks)) for phi, _ in checked]
    if mu is not None:
        fns = [_shift(f, float(m)) for f, m in zip(fns, mu)]
        smooth_all = [None if p is None else _shift_smooth(p, float(m)) for p, m in zip(smooth_all, mu)]
        kinks_all = [tuple(c - float(m) for c in ks) for ks, m in zip(kinks_all, mu)]
    L, _ = _pivoted_cholesky(A)
    r = L.shape[1]
    lev = _levels(L)
    const = 1.0
    for i in range(len(fns)):
        if lev[i] < 0:  # zero variance: the factor is its value at 0
            const *= float(fns[i](np.zeros(1))[0])
    if r == 0:
        return const
    keep = [i for i in range(len(fns)) if lev[i] >= 0]
    kinks = [kinks_all[i] for i in keep]
    Lk, levk = L[keep], lev[keep]
    forms = _breakpoint_forms(Lk, levk, kinks, r)
    smooth = [smooth_all[i] for i in keep]
    # low rank is cheap: more nodes per panel there (x3 for rank 1, x2 for rank 2)
    plan = _Plan([fns[i] for i in keep], smooth, Lk, levk, forms, nodes * max(1, 4 - r))
    return const * plan.integrate(np.zeros((1, 0)), np.ones(1))
