"""Mean-field (infinite-width) recursions with weight and bias variances C_W, C_b on the UNNORMALISED phi.

Network convention (docs/conventions): K^(1) = C_b + C_W G0 and K^(l+1) = C_b + C_W <phi(u_a) phi(u_b)>_{K^(l)},
where <f>_K is the expectation over u ~ N(0, K).  Single-input quantities at a variance K:
``variance_map = C_b + C_W <phi^2>_K``, ``chi_parallel = C_W d<phi^2>_K/dK``, ``chi_perp = C_W <phi'^2>_K``.
Criticality (edge of chaos): chi_perp(K*) = 1 at the variance fixed point K*.

Gaussian pair expectations: closed forms for identity/relu/leaky_relu/abs (arc-cosine kernel), step, erf, exp,
sin, cos; kink-free activations by the Mehler series with a verified tail (below); elu/celu/selu semi-analytically
(:mod:`sigprop.theory.semi_analytic`); every other activation by the polar Gauss-Legendre rule of
:func:`sigprop.theory.gaussian.pair_expect` (split at kinks).  Accurate to ~1e-11 absolute for variances up to
~10 and unit-scale activations (tested against closed forms, a doubled rule and adaptive quadrature).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sigprop.theory.arguments import nonnegative_real, positive_real
from sigprop.theory.errors import InputError

from .activation_closed_forms import pair_deriv_form, pair_form, piecewise_linear_slopes
from .activations import Activation, as_activation
from .gaussian import expect_fast, pair_expect
from .hermite import hermite_table
from .pair_formulas import correlation, sqrt_product
from .semi_analytic import exp_linear_pieces, semi_analytic_pair


def _brentq(*args, **kwargs):
    from scipy.optimize import brentq  # lazy: keeps `sigprop theory` start-up fast

    return brentq(*args, **kwargs)


__all__ = [
    "gaussian_pair_expectation",
    "gaussian_pair_expectation_deriv",
    "gaussian_expectation",
    "kernel_recursion",
    "variance_map",
    "chi_parallel",
    "chi_perp",
    "fixed_point_variance",
    "correlation_map",
    "CriticalPoint",
    "critical_point",
    "critical_line",
]


def _check_K(Kaa, Kab, Kbb, who: str):
    Kaa, Kab, Kbb = np.broadcast_arrays(np.asarray(Kaa, dtype=float), np.asarray(Kab, dtype=float),
                                        np.asarray(Kbb, dtype=float))
    if not (np.all(np.isfinite(Kaa)) and np.all(np.isfinite(Kab)) and np.all(np.isfinite(Kbb))):
        raise InputError(f"{who}: Kaa, Kab, Kbb must be finite")
    if np.any(Kaa < 0) or np.any(Kbb < 0):
        raise InputError(f"{who}: variances Kaa, Kbb must be >= 0")
    if np.any(_not_psd(Kaa, Kab, Kbb)):
        raise InputError(f"{who}: K must be positive semi-definite (Kab^2 <= Kaa Kbb)")
    return Kaa, Kab, Kbb


def _not_psd(Kaa, Kab, Kbb) -> np.ndarray:
    """Kab^2 > Kaa Kbb beyond rounding: compared as squares where they are normal floats, else as
    |Kab| against sqrt(Kaa) sqrt(Kbb) (where Kab^2 or Kaa Kbb would overflow or underflow)."""
    with np.errstate(over="ignore", under="ignore"):
        lhs = Kab * Kab
        prod = Kaa * Kbb
        rhs = prod * (1.0 + 1e-10) + 1e-300
    usual = np.isfinite(lhs) & np.isfinite(rhs) & ((prod >= 1e-280) | (Kaa == 0) | (Kbb == 0))
    scaled = np.abs(Kab) > sqrt_product(Kaa, Kbb) * (1.0 + 5e-11) + 1e-300
    return np.where(usual, lhs > rhs, scaled)


# |phi| on the quadrature range beyond which the numeric rules integrate phi scaled by a power of two (products of
# two values and squares stay finite; the scale is undone exactly at the end)
_SCALE_ABOVE = 2.0 ** 400
_PROBES = np.array([-12.5, -4.0, -1.0, 1.0, 4.0, 12.5])


def _scale_exponents(f: Callable, s: np.ndarray) -> np.ndarray:
    """e with 2^-e |f(s x)| = O(1) for |x| <= 12.5 where |f| exceeds 2^400 there, else 0 (integer array, shape of s)."""
    with np.errstate(over="ignore", invalid="ignore"):
        M = np.max(np.abs(np.asarray(f(s.reshape(-1, 1) * _PROBES), dtype=float)), axis=1)
    e = np.where(np.isfinite(M) & (M > _SCALE_ABOVE), np.frexp(np.where(np.isfinite(M), M, 1.0))[1], 0)
    return e.reshape(s.shape)


def _numeric_pair(act: Activation, f: Callable, kinks, parity_sym: bool, Kaa, Kab, Kbb) -> np.ndarray:
    """The numeric rules; pairs where |f| is huge (variances beyond ~1e237 for linearly growing f) are integrated
    with f scaled by powers of two (polar rule, grouped by scale), every other pair exactly as before."""
    ea = _scale_exponents(f, np.sqrt(Kaa))
    eb = _scale_exponents(f, np.sqrt(Kbb))
    big = (ea != 0) | (eb != 0)
    if not np.any(big):
        return _numeric_pair_plain(act, f, kinks, parity_sym, Kaa, Kab, Kbb)
    out = np.empty(Kaa.shape)
    small = ~big
    if np.any(small):
        out[small] = _numeric_pair_plain(act, f, kinks, parity_sym, Kaa[small], Kab[small], Kbb[small])
    rho = correlation(Kaa, Kab, Kbb)
    for pa, pb in sorted({(int(x), int(y)) for x, y in zip(ea[big], eb[big])}):
        sel = big & (ea == pa) & (eb == pb)

        def fa(u, p=pa):
            return np.ldexp(np.asarray(f(u), dtype=float), -p)

        def fb(u, p=pb):
            return np.ldexp(np.asarray(f(u), dtype=float), -p)

        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            val = pair_expect(fa, fb, np.sqrt(Kaa[sel]), np.sqrt(Kbb[sel]), rho[sel], kinks, kinks,
                              symmetric=parity_sym)
            out[sel] = np.ldexp(val, pa + pb)
    return out


_SEMI_ANALYTIC_MIN = 1e-8  # smallest nonzero variance given to the semi-analytic rule (elu, celu, selu)
_SEMI_ANALYTIC_SWAP = 1e4  # conditional-side variance above which the smaller variance is put on that side


def _exp_linear_pair(f: Callable, pieces, kinks, parity_sym: bool, Kaa, Kbb, sa, sb, rho) -> np.ndarray:
    """The semi-analytic rule for elu/celu/selu where it is accurate, the polar rule elsewhere.

    Its closed-form conditional mean (the b side) cancels between exponential pieces, losing digits below a variance
    of 1e-8 and in proportion to its variance above 1e4; so pairs with a nonzero variance below 1e-8 go to the polar
    rule (phi uses expm1 there), the smaller variance is put on the b side when Kbb > 1e4 (the pair is symmetric),
    and any pair whose value still is not finite goes to the polar rule.  Other pairs: the semi-analytic rule as is.
    """
    sa, sb, rho, Kaa, Kbb = np.broadcast_arrays(sa, sb, rho, Kaa, Kbb)
    tiny = ((Kaa > 0) & (Kaa < _SEMI_ANALYTIC_MIN)) | ((Kbb > 0) & (Kbb < _SEMI_ANALYTIC_MIN))
    swap = (Kbb > _SEMI_ANALYTIC_SWAP) & (Kbb > Kaa)
    sa, sb = np.where(swap, sb, sa), np.where(swap, sa, sb)
    out = np.empty(sa.shape)
    semi = ~tiny
    if np.any(semi):
        with np.errstate(over="ignore", invalid="ignore"):
            out[semi] = semi_analytic_pair(f, f, pieces, sa[semi], sb[semi], rho[semi])
    polar = tiny | ~np.isfinite(out)
    if np.any(polar):
        out[polar] = pair_expect(f, f, sa[polar], sb[polar], rho[polar], kinks, kinks, symmetric=parity_sym)
    return out


def _numeric_pair_plain(act: Activation, f: Callable, kinks, parity_sym: bool, Kaa, Kab, Kbb) -> np.ndarray:
    sa, sb = np.sqrt(Kaa), np.sqrt(Kbb)
    if not kinks:
        return _series_or_polar(act, f, Kaa, Kab, Kbb)
    prod = sa * sb
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(prod > 0, Kab / np.where(prod > 0, prod, 1.0), 0.0)
    rho = np.clip(rho, -1.0, 1.0)
    pieces = exp_linear_pieces(act, derivative=f is act.deriv)
    if pieces is not None:  # elu/celu/selu: closed-form conditional expectation, 1-D outer integral
        return _exp_linear_pair(f, pieces, kinks, parity_sym, Kaa, Kbb, sa, sb, rho)
    return pair_expect(f, f, sa, sb, rho, kinks, kinks, symmetric=parity_sym)


_SERIES_KMAX = 200
_SERIES_TOL = 1e-13


def _series_or_polar(act: Activation, f: Callable, Kaa, Kab, Kbb) -> np.ndarray:
    """Smooth f: <f(u_a) f(u_b)> = sum_k t_k(Kaa) t_k(Kbb) rho^k with t_k(K) = E[f(sqrt(K) X) he_k(X)]
    (Mehler), k <= 200.  The truncation error is at most sqrt(tail_a tail_b), tail(K) = <f^2>_K - sum_k t_k(K)^2
    (Cauchy-Schwarz); pairs whose bound exceeds 1e-13 (relative) go to the polar rule instead."""
    shape = Kaa.shape
    a, b, c = Kaa.ravel(), Kbb.ravel(), Kab.ravel()
    v, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    ia, ib = inv[: a.size], inv[a.size:]
    T = hermite_table(f, np.sqrt(v), _SERIES_KMAX)
    m2 = expect_fast(lambda u: f(u) ** 2, v)
    tail = np.maximum(m2 - np.sum(T * T, axis=1), 0.0)
    rho = correlation(a, c, b)
    Ta, Tb = T[ia], T[ib]
    acc = np.zeros_like(rho)
    for k in range(_SERIES_KMAX, -1, -1):  # Horner in rho
        acc = acc * rho + Ta[:, k] * Tb[:, k]
    bound = sqrt_product(tail[ia], tail[ib])
    bad = bound > _SERIES_TOL * np.maximum(1.0, sqrt_product(m2[ia], m2[ib]))
    if np.any(bad):
        acc[bad] = pair_expect(f, f, np.sqrt(a[bad]), np.sqrt(b[bad]), rho[bad], symmetric=_symmetric(act))
    return acc.reshape(shape)


def _symmetric(act: Activation) -> bool:
    return act.parity in ("odd", "even") and all(k == 0.0 for k in act.kinks)


def pair_values(act: Activation, Kaa, Kab, Kbb) -> np.ndarray:
    """<phi(u_a) phi(u_b)>_K for already checked, broadcast float arrays (no argument checks: the callers' loops,
    :func:`kernel_recursion` and the rainbow kernels, check once at their entry); inf (or NaN) where float64
    overflows, which the caller reports with its own context (:func:`gaussian_pair_expectation` is the checked
    public entry)."""
    form = pair_form(act)
    if form is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(form(Kaa, Kab, Kbb), dtype=float)
    return _numeric_pair(act, act.fn, act.kinks, _symmetric(act), Kaa, Kab, Kbb)


def _check_finite_result(val: np.ndarray, act: Activation, Kaa, Kab, Kbb, who: str, what: str) -> np.ndarray:
    """``val``, or an InputError naming the first (Kaa, Kab, Kbb) where it is not a finite float64."""
    bad = ~np.isfinite(val)
    if np.any(bad):
        i = np.flatnonzero(bad.ravel())[0]
        k = [float(np.ravel(x)[i]) for x in (Kaa, Kab, Kbb)]
        raise InputError(f"{who}: {what} for {act.label} is beyond the float64 range at Kaa={k[0]:.6g}, "
                         f"Kab={k[1]:.6g}, Kbb={k[2]:.6g}; the variances Kaa, Kbb must be smaller there")
    return val


def gaussian_pair_expectation(act: str | Activation, Kaa, Kab, Kbb) -> np.ndarray:
    """<phi(u_a) phi(u_b)> for (u_a, u_b) ~ N(0, [[Kaa, Kab], [Kab, Kbb]]), vectorised (arrays broadcast).

    Right over the whole float64 range of the variances (the correlation is formed without the product
    ``Kaa Kbb``, and huge activations are integrated scaled by a power of two); an InputError naming the variances
    where the expectation itself is beyond float64 (e.g. exp at Kaa + Kbb > ~1400).

    Examples
    --------
    For tanh at huge variances phi is sign(u), so the value is (2/pi) arcsin(rho) = 1/3 at rho = 1/2:

    >>> round(float(gaussian_pair_expectation("tanh", 1e200, 0.5e200, 1e200)), 12)
    0.333333333333
    """
    act = as_activation(act)
    Kaa, Kab, Kbb = _check_K(Kaa, Kab, Kbb, "gaussian_pair_expectation")
    val = pair_values(act, Kaa, Kab, Kbb)
    return _check_finite_result(val, act, Kaa, Kab, Kbb, "gaussian_pair_expectation", "<phi(u_a) phi(u_b)>")


def gaussian_pair_expectation_deriv(act: str | Activation, Kaa, Kab, Kbb) -> np.ndarray:
    """<phi'(u_a) phi'(u_b)> for (u_a, u_b) ~ N(0, K), vectorised.  Undefined (ValueError) when phi jumps."""
    act = as_activation(act)
    Kaa, Kab, Kbb = _check_K(Kaa, Kab, Kbb, "gaussian_pair_expectation_deriv")
    if act.jumps:
        raise InputError(f"gaussian_pair_expectation_deriv: {act.label} jumps at {act.jumps}, so phi' has a delta "
                         "mass and <phi' phi'> is not a function of K")
    form = pair_deriv_form(act)
    if form is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            val = np.asarray(form(Kaa, Kab, Kbb), dtype=float)
    else:
        val = _numeric_pair(act, act.deriv, act.kinks, _symmetric(act), Kaa, Kab, Kbb)
    return _check_finite_result(val, act, Kaa, Kab, Kbb, "gaussian_pair_expectation_deriv", "<phi'(u_a) phi'(u_b)>")


def _check_variance(K, where: str) -> np.ndarray:
    """K as a float array, after checking every entry is a finite variance (>= 0)."""
    K = np.asarray(K, dtype=float)
    if not np.all(np.isfinite(K)) or np.any(K < 0):
        raise InputError(f"{where}: K must be finite and >= 0")
    return K


def gaussian_expectation(f: Callable[[np.ndarray], np.ndarray], K, kinks=()) -> np.ndarray:
    """<f(u)>_K for u ~ N(0, K), vectorised over K (composite Gauss-Legendre split at kinks)."""
    K = _check_variance(K, "gaussian_expectation")
    return expect_fast(f, K, kinks)


def kernel_recursion(act: str | Activation, G0, depth: int, C_W: float, C_b: float = 0.0) -> np.ndarray:
    """Mean-field kernels K^(1..depth) of P inputs: array (depth, P, P), index 0 = K^(1) = C_b + C_W G0,
    K^(l+1) = C_b + C_W <phi(u_a) phi(u_b)>_{K^(l)}.

    Examples
    --------
    ReLU at criticality (C_W = 2) keeps the variances and pulls the correlation towards 1:

    >>> import numpy as np
    >>> K = kernel_recursion("relu", np.array([[1.0, 0.5], [0.5, 1.0]]), depth=3, C_W=2.0)
    >>> K.shape
    (3, 2, 2)
    >>> np.round(K[-1], 6)
    array([[2.      , 1.367811],
           [1.367811, 2.      ]])
    """
    act = as_activation(act)
    G0 = np.asarray(G0, dtype=float)
    if G0.ndim != 2 or G0.shape[0] != G0.shape[1] or G0.shape[0] < 1:
        raise InputError(f"kernel_recursion: G0 must be a square (P, P) matrix, got shape {G0.shape}")
    if not np.all(np.isfinite(G0)) or not np.allclose(G0, G0.T, rtol=1e-12, atol=1e-14):
        raise InputError("kernel_recursion: G0 must be finite and symmetric")
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise InputError(f"kernel_recursion: depth must be an integer >= 1, got {depth!r}")
    positive_real("C_W", C_W, "kernel_recursion")
    nonnegative_real("C_b", C_b, "kernel_recursion")
    if np.min(np.linalg.eigvalsh(0.5 * (G0 + G0.T))) < -1e-10 * max(1.0, float(np.max(np.abs(G0)))):
        raise InputError("kernel_recursion: G0 must be positive semi-definite")
    P = G0.shape[0]
    iu, ju = np.triu_indices(P)
    out = np.empty((depth, P, P))
    K = C_b + C_W * 0.5 * (G0 + G0.T)
    out[0] = K
    for layer in range(1, depth):
        d = np.diag(K)
        kab = K[iu, ju]
        kaa, kbb = d[iu], d[ju]
        # guard tiny PSD violations from rounding before the check in the pair expectation
        lim = sqrt_product(kaa, kbb)
        kab = np.clip(kab, -lim, lim)
        with np.errstate(over="ignore", invalid="ignore"):
            vals = C_b + C_W * pair_values(act, kaa, kab, kbb)
        K = np.empty((P, P))
        K[iu, ju] = vals
        K[ju, iu] = vals
        if not np.all(np.isfinite(K)):
            raise InputError(f"kernel_recursion: the kernel overflowed at layer {layer + 1} (C_W={C_W}, C_b={C_b})")
        out[layer] = K
    return out


def _second_moment(act: Activation, K) -> np.ndarray:
    K = np.asarray(K, dtype=float)
    form = pair_form(act)
    if form is not None:
        return np.asarray(form(K, K, K), dtype=float)
    return expect_fast(lambda u: act.fn(u) ** 2, K, act.kinks)


def variance_map(act: str | Activation, K, C_W: float, C_b: float = 0.0) -> np.ndarray:
    """Single-input variance map K -> C_b + C_W <phi(u)^2>_K (vectorised in K >= 0)."""
    act = as_activation(act)
    positive_real("C_W", C_W, "variance_map")
    nonnegative_real("C_b", C_b, "variance_map")
    K = _check_variance(K, "variance_map")
    return C_b + C_W * _second_moment(act, K)


def chi_perp(act: str | Activation, K, C_W: float) -> np.ndarray:
    """chi_perp = C_W <phi'(u)^2>_K (vectorised in K >= 0); at K = 0 the limit K -> 0+: C_W phi'(0)^2, or
    C_W (phi'(0+)^2 + phi'(0-)^2)/2 when phi has a kink at 0."""
    act = as_activation(act)
    positive_real("C_W", C_W, "chi_perp")
    K = _check_variance(K, "chi_perp")
    if act.jumps:
        raise InputError(f"chi_perp: {act.label} jumps, so <phi'^2> is infinite")
    form = pair_deriv_form(act)
    if form is not None:
        val = np.asarray(form(K, K, K), dtype=float)
    else:
        val = expect_fast(lambda u: act.deriv(u) ** 2, K, act.kinks)
    if 0.0 in act.kinks and np.any(K == 0):
        val = np.where(K == 0, _one_sided_sq_mean(act), val)
    return C_W * val


def _one_sided_sq_mean(act: Activation) -> float:
    """lim_{K->0+} <phi'(u)^2>_K for a kink at 0: (phi'(0+)^2 + phi'(0-)^2) / 2."""
    h = 1e-300
    return 0.5 * (float(act.deriv(np.array(h))) ** 2 + float(act.deriv(np.array(-h))) ** 2)


def chi_parallel(act: str | Activation, K, C_W: float) -> np.ndarray:
    """chi_par = C_W d<phi^2>_K/dK = C_W <u phi(u) phi'(u)>_K / K (Gaussian integration by parts), K > 0;
    at K = 0 the limit C_W (phi'(0)^2 + phi(0) phi''(0)) (phi'' by a central difference of phi'), or for a kink at 0
    with phi(0) = 0 the limit C_W (phi'(0+)^2 + phi'(0-)^2)/2."""
    act = as_activation(act)
    positive_real("C_W", C_W, "chi_parallel")
    K = _check_variance(K, "chi_parallel")
    if act.jumps:
        raise InputError(f"chi_parallel: {act.label} jumps; d<phi^2>/dK involves a delta term not supported")
    Kpos = np.where(K > 0, K, 1.0)
    val = expect_fast(lambda u: u * act.fn(u) * act.deriv(u), Kpos, act.kinks) / Kpos
    if np.any(K == 0):
        if 0.0 in act.kinks:
            if float(act.fn(np.array(0.0))) != 0.0:
                raise InputError(f"chi_parallel: {act.label} has a kink at 0 and phi(0) != 0; "
                                 "the K -> 0 limit is undefined")
            # phi ~ piecewise linear near 0: <phi^2>_K ~ K (phi'(0+)^2 + phi'(0-)^2)/2
            return C_W * np.where(K > 0, val, _one_sided_sq_mean(act))
        h = 1e-5
        p0 = float(act.fn(np.array(0.0)))
        d0 = float(act.deriv(np.array(0.0)))
        d2 = float((act.deriv(np.array(h)) - act.deriv(np.array(-h))) / (2 * h))
        val = np.where(K > 0, val, d0 * d0 + p0 * d2)
    return C_W * val


def fixed_point_variance(act: str | Activation, C_W: float, C_b: float = 0.0, *, K0: float = 1.0,
                         K_max: float = 1e6, tol: float = 1e-13) -> float:
    """The variance fixed point K* = C_b + C_W <phi^2>_{K*} reached by iterating the variance map from K0.

    The map is increasing in K, so the iteration moves monotonically to the nearest root of
    F(K) = C_b + C_W <phi^2>_K - K in the direction of F(K0); that root is bracketed on a geometric grid and
    solved by Brent's method (never read off an iterate).  If F(K0) = 0 (e.g. relu at C_W = 2, C_b = 0, where
    every K is a fixed point) K0 is returned; K* = 0 when C_b = 0, phi(0) = 0 and F < 0 down to K -> 0.
    ValueError if the variance diverges (no root below K_max).
    """
    act = as_activation(act)
    positive_real("C_W", C_W, "fixed_point_variance")
    nonnegative_real("C_b", C_b, "fixed_point_variance")
    if not (math.isfinite(K0) and K0 > 0):
        raise InputError(f"fixed_point_variance: K0 must be finite and > 0, got {K0!r}")

    def F(K: float) -> float:
        with np.errstate(over="ignore", invalid="ignore"):
            return float(C_b + C_W * _second_moment(act, np.array(K)) - K)

    f0 = F(K0)
    if abs(f0) <= tol * max(1.0, K0):
        return float(K0)
    if f0 > 0:
        lo, flo = K0, f0
        while True:
            hi = lo * 2.0
            if hi > K_max:
                raise InputError(f"fixed_point_variance: no fixed point below K_max={K_max:g}; the variance diverges "
                                 f"for {act.label} with C_W={C_W}, C_b={C_b}")
            fhi = F(hi)
            if not math.isfinite(fhi):
                raise InputError(f"fixed_point_variance: <phi^2>_K overflowed for {act.label} (variance diverges)")
            if fhi <= 0:
                break
            lo, flo = hi, fhi
        if fhi == 0:
            return hi
        return float(_brentq(F, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200))
    hi, fhi = K0, f0
    while True:
        lo = hi / 8.0
        if lo < 1e-300:
            return 0.0
        flo = F(lo)
        if flo >= 0:
            break
        hi = lo
    if flo == 0:
        return lo
    return float(_brentq(F, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500))


def correlation_map(act: str | Activation, rho, C_W: float, C_b: float = 0.0,
                    K_star: float | None = None) -> np.ndarray:
    """Correlation map at the variance fixed point: c -> (C_b + C_W <phi(u_a) phi(u_b)>_{K*[[1,c],[c,1]]}) / K*.

    Its slope at c = 1 is chi_perp(K*).  K* defaults to :func:`fixed_point_variance`; K* = 0 is a ValueError
    (the correlation is then undefined)."""
    act = as_activation(act)
    positive_real("C_W", C_W, "correlation_map")
    nonnegative_real("C_b", C_b, "correlation_map")
    rho = np.asarray(rho, dtype=float)
    if np.any(~np.isfinite(rho)) or np.any(np.abs(rho) > 1):
        raise InputError("correlation_map: rho must be in [-1, 1] (no NaN)")
    Ks = fixed_point_variance(act, C_W, C_b) if K_star is None else float(K_star)
    if not Ks > 0:
        raise InputError("correlation_map: the fixed-point variance is 0, so correlations are undefined")
    return (C_b + C_W * gaussian_pair_expectation(act, Ks, rho * Ks, Ks)) / Ks


@dataclass(frozen=True)
class CriticalPoint:
    """A point (C_b, C_W) on the critical line: chi_perp(K*) = 1 at the variance fixed point K*."""

    C_b: float
    C_W: float
    K_star: float
    chi_perp: float
    chi_parallel: float


def _chi_perp_at_fixed_point(act: Activation, C_W: float, C_b: float) -> tuple[float, float]:
    Ks = fixed_point_variance(act, C_W, C_b)
    return float(chi_perp(act, Ks, C_W)), Ks


def critical_point(act: str | Activation, C_b: float = 0.0, *,
                   C_W_bracket: tuple[float, float] = (1e-3, 1e3)) -> CriticalPoint:
    """The C_W on the critical line for the given C_b: chi_perp(K*(C_W, C_b)) = 1, solved by Brent's method on
    C_W (K* from :func:`fixed_point_variance`, required to be attracting: chi_parallel(K*) <= 1) after a scan of
    81 log-spaced C_W values in ``C_W_bracket``; the root is verified (|chi_perp - 1| <= 1e-9).  ValueError when
    there is none, e.g. GELU/SiLU at C_b = 0.1 where the attracting fixed point disappears in a saddle-node while
    chi_perp < 1, or softplus/exp.  Special cases solved exactly: positively homogeneous phi
    (relu, leaky_relu, abs, identity) have C_W = 2/(a^2+b^2) at C_b = 0 (relu: 2; every K is then a fixed
    point and K* = 1 is reported); smooth phi with phi(0) = 0 at C_b = 0 (tanh, erf, sin) have the
    K* = 0 limit C_W = 1/phi'(0)^2 (tanh: 1), used when K* = 0 is attracting there.

    Examples
    --------
    >>> critical_point("relu").C_W
    2.0
    >>> cp = critical_point("tanh", C_b=0.1)
    >>> round(cp.C_W, 6), round(cp.K_star, 6), cp.chi_perp
    (1.986073, 0.805799, 1.0)
    """
    act = as_activation(act)
    nonnegative_real("C_b", C_b, "critical_point")
    if act.jumps:
        raise InputError(f"critical_point: {act.label} jumps, chi_perp is infinite")

    def g(cw: float) -> float:
        """chi_perp(K*) - 1 on the attracting fixed point; inf where there is none (diverges, or only unstable)."""
        try:
            cp, Ks = _chi_perp_at_fixed_point(act, cw, C_b)
            if float(chi_parallel(act, Ks, cw)) > 1.0 + 1e-9:
                return math.inf
            return cp - 1.0
        except ValueError:
            return math.inf

    pl = piecewise_linear_slopes(act)
    if pl is not None:  # positively homogeneous: <phi^2>_K = S K, <phi'^2>_K = S for every K > 0
        S = 0.5 * (pl[0] ** 2 + pl[1] ** 2)
        if C_b != 0.0:
            raise InputError(f"critical_point: {act.label} is positively homogeneous; with C_b > 0 the variance "
                             "vanishes or diverges at chi_perp = 1, so only C_b = 0 is critical")
        # every K is a fixed point at C_W = 1/S (marginal); K* = 1 is reported by convention
        return CriticalPoint(C_b=0.0, C_W=1.0 / S, K_star=1.0, chi_perp=1.0, chi_parallel=1.0)
    phi0 = float(act.fn(np.array(0.0)))
    if C_b == 0.0 and phi0 == 0.0 and 0.0 not in act.kinks:
        d0 = float(act.deriv(np.array(0.0)))
        if d0 != 0.0:
            cw0 = 1.0 / (d0 * d0)
            # K* = 0 up to rounding: F(K) ~ -c K^2 near 0 is lost below K ~ 1e-8 in float64
            try:
                k_at_cw0 = fixed_point_variance(act, cw0, 0.0)
            except ValueError:  # K = 0 is not attracting from K0 there (e.g. gelu): use the general scan
                k_at_cw0 = math.inf
            if k_at_cw0 < 1e-6:
                # K* = 0 is the attracting fixed point there; chi_perp(0) = chi_par(0) = C_W phi'(0)^2 = 1
                return CriticalPoint(C_b=0.0, C_W=cw0, K_star=0.0, chi_perp=1.0, chi_parallel=1.0)
    lo, hi = C_W_bracket
    grid = np.geomspace(lo, hi, 81)
    vals = [g(float(c)) for c in grid]
    idx = next((i for i in range(len(grid) - 1)
                if math.isfinite(vals[i]) and math.isfinite(vals[i + 1]) and vals[i] < 0 <= vals[i + 1]), None)
    if idx is None:
        lost = next((float(grid[i + 1]) for i in range(len(grid) - 1)
                     if math.isfinite(vals[i]) and not math.isfinite(vals[i + 1])), None)
        why = (f"; the attracting variance fixed point disappears (or diverges) near C_W ~ {lost:.4g} while "
               f"chi_perp < 1" if lost is not None else "")
        raise InputError(f"critical_point: no C_W in [{lo:g}, {hi:g}] with chi_perp(K*) = 1 on an attracting "
                         f"variance fixed point for {act.label}, C_b={C_b}{why}")
    cw = float(_brentq(g, float(grid[idx]), float(grid[idx + 1]), xtol=1e-15, rtol=1e-14, maxiter=200))
    cp, Ks = _chi_perp_at_fixed_point(act, cw, C_b)
    if not abs(cp - 1.0) <= 1e-9:
        raise InputError(f"critical_point: chi_perp(K*) jumps across 1 near C_W = {cw:.6g} for {act.label}, "
                         f"C_b={C_b} (K* = {Ks:.6g}, chi_perp = {cp:.6g}); no critical point there")
    cpar = float(chi_parallel(act, Ks, cw))
    return CriticalPoint(C_b=float(C_b), C_W=cw, K_star=Ks, chi_perp=cp, chi_parallel=cpar)


def critical_line(act: str | Activation, C_b_values) -> np.ndarray:
    """C_W on the critical line for each C_b in ``C_b_values`` (array of the same shape)."""
    act = as_activation(act)
    cbs = np.asarray(C_b_values, dtype=float)
    return np.array([critical_point(act, float(cb)).C_W for cb in cbs.ravel()]).reshape(cbs.shape)
