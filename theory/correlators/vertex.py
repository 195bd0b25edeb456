"""Leading order in 1/n, single input: the kernel ``K^{(l)}`` and the four-point cumulant ``kappa_4^{(l)}``.

Definitions (exact, any width).  Given layer l, the neurons of layer l+1 are i.i.d. ``N(0, Sigma^{(l+1)})`` with
``Sigma^{(l+1)} = C_b + (C_W/n_l) sum_j phi(z_j^{(l)})^2``.  Hence for distinct neurons i != j

    kappa_4^{(l)} := E[z_i^2 z_j^2] - E[z^2]^2 = (E[z^4] - 3 E[z^2]^2) / 3 = Var(Sigma^{(l)}),

with ``E[z^2]`` the *finite-width* second moment.  The recursion (leading order, ``kappa_4^{(1)} = 0``)

    kappa_4^{(l+1)} = (C_W^2 / n_l) Var_{K^{(l)}}[phi^2] + chi_par(K^{(l)})^2 kappa_4^{(l)} + O(1/n^2),
    chi_par(K) = C_W d<phi^2>_K/dK,

follows from ``Var(mean_j f_j) = Var(f)/n + (1 - 1/n) Cov(f_i, f_j)`` and ``Cov(f_i, f_j) = Var(<f>_Sigma)``.
What it predicts: ``E[z^4] / (3 E[z^2]^2) - 1 = kappa_4 / E[z^2]^2 = kappa_4 / K^2 + O(1/n^2)`` -- the O(1/n)
shift of ``E[z^2]`` away from ``K`` enters only at O(1/n^2) in this ratio, so no correction to K is needed for
the ratio.  It *is* needed if ``kappa_4`` is estimated as ``E[z^4]/3 - K^2`` with the infinite-width K; the
first-order shift ``dK`` (``E[z^2] = K + dK + O(1/n^2)``) is returned too:

    dK^{(l+1)} = chi_par dK^{(l)} + (C_W/2) (d^2<phi^2>_K/dK^2) kappa_4^{(l)},   dK^{(1)} = 0.

K-derivatives use ``d^k/dK^k <f>_K = (2K)^{-k} E[f(sqrt(K) x) He_{2k}(x)]`` (no derivative of phi needed, so
kinks are harmless).  Expectations: fixed Gauss-Legendre panels split at the kinks (:func:`gauss_expect1`),
~1e-14 relative, checked against :func:`sigprop.theory.gaussian.expect`.
``V^{(l)} = n_{l-1} kappa_4^{(l)}`` is the vertex.

Scale-invariant phi (slopes a+, a-; ``A_p = (a+^p + a-^p)/2``) at criticality (``C_W = 1/A_2``, ``C_b = 0``):
``<phi^2>_K = A_2 K``, ``<phi^4>_K = 3 A_4 K^2``, ``chi_par = 1``, so ``V^{(l)} = (l-1)(3A_4/A_2^2 - 1) K^2``
(:func:`derive_scale_invariant_vertex` solves the recursion with SymPy).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import sympy as sp

from sigprop.theory.errors import InputError, InputTypeError

from ..activations import as_activation
from .deep_linear import check_positive, validate_widths

__all__ = [
    "VertexResult",
    "vertex_recursion",
    "gaussian_moments",
    "derive_scale_invariant_vertex",
    "scale_invariant_vertex",
    "double_critical_point",
]


def check_nonneg(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise InputTypeError(f"{name} must be a real number, got {x!r}")
    x = float(x)
    if not (math.isfinite(x) and x >= 0):
        raise InputError(f"{name} must be finite and >= 0, got {x!r}")
    return x


@dataclass(frozen=True)
class GaussianMoments:
    """At one K: ``m2 = <phi^2>_K``, ``m4 = <phi^4>_K``, ``d1 = d<phi^2>/dK``, ``d2 = d^2<phi^2>/dK^2``."""

    K: float
    m2: float
    m4: float
    d1: float
    d2: float


_PANELS = (0.0, 1.5, 3.0, 4.5, 6.0, 8.0, 10.5, 14.0, 20.0, 28.0, 38.0)
_GL = np.polynomial.legendre.leggauss(32)


def gauss_expect1(f, var: float, kinks=()) -> float:
    """``E[f(u)]``, ``u ~ N(0, var)``, ``f`` vectorised: 32-point Gauss-Legendre on panels of ``x = u/sqrt(var)`` in
    [-38, 38], split at 0, +-1.5, ..., +-14, ... and at the kinks: spectral accuracy (~1e-14 relative) for
    piecewise-smooth ``f`` of at most exponential growth, with no adaptive tolerance to tune.
    (Cross-checked against :func:`sigprop.theory.gaussian.expect` in the tests.)"""
    s = math.sqrt(var)
    edges = sorted({*(-p for p in _PANELS), *_PANELS, *(k / s for k in kinks if abs(k / s) < _PANELS[-1])})
    x0, w0 = _GL
    xs, ws = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        xs.append(0.5 * (hi - lo) * x0 + 0.5 * (hi + lo))
        ws.append(0.5 * (hi - lo) * w0)
    x, w = np.concatenate(xs), np.concatenate(ws)
    dens = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return float(np.sum(w * dens * f(s * x)))


def gaussian_moments(act, K: float) -> GaussianMoments:
    """Gaussian expectations of ``phi^2`` and ``phi^4`` and the first two K-derivatives of ``<phi^2>_K``."""
    phi = as_activation(act)
    K = check_positive(K, "K")
    s = math.sqrt(K)
    fn = phi.fn
    kinks = phi.kinks

    def e(g):
        return gauss_expect1(g, K, kinks)

    m2 = e(lambda u: fn(u) ** 2)
    m4 = e(lambda u: fn(u) ** 4)
    d1 = e(lambda u: fn(u) ** 2 * ((u / s) ** 2 - 1.0)) / (2.0 * K)
    d2 = e(lambda u: fn(u) ** 2 * ((u / s) ** 4 - 6.0 * (u / s) ** 2 + 3.0)) / (4.0 * K * K)
    return GaussianMoments(K=K, m2=m2, m4=m4, d1=d1, d2=d2)


@dataclass(frozen=True)
class VertexResult:
    """Per-layer arrays (index 0 = hidden layer 1, where ``kappa4 = 0``).

    ``K``: infinite-width kernel; ``kappa4``: leading-order ``Var(Sigma) = (E z^4 - 3 (E z^2)^2)/3`` (O(1/n));
    ``V = n_{l-1} kappa4`` (``V[0] = 0``); ``chi_par``: ``C_W d<phi^2>/dK`` at ``K^{(l)}``;
    ``var_phi2``: ``Var_{K^{(l)}}[phi^2]``; ``dK``: first-order shift of ``E[z^2]`` from ``K``;
    ``ratio``: predicted ``E[z^4]/(3 E[z^2]^2) - 1 = kappa4 / K^2`` at O(1/n).
    """

    activation: str
    widths: np.ndarray
    C_W: float
    C_b: float
    K: np.ndarray
    kappa4: np.ndarray
    V: np.ndarray
    chi_par: np.ndarray
    var_phi2: np.ndarray
    dK: np.ndarray

    @property
    def ratio(self) -> np.ndarray:
        return self.kappa4 / self.K**2


def _vertex_layer(phi, l: int, L: int, w, C_W: float, C_b: float, K, kap, dK, chi, var) -> None:
    """One step of :func:`vertex_recursion`: chi and var at layer ``l``, and K, kappa4, dK of layer ``l + 1``."""
    g = gaussian_moments(phi, K[l])
    chi[l] = C_W * g.d1
    var[l] = g.m4 - g.m2**2
    if l + 1 < L:
        K[l + 1] = C_b + C_W * g.m2
        kap[l + 1] = C_W**2 * var[l] / w[l] + chi[l] ** 2 * kap[l]
        dK[l + 1] = chi[l] * dK[l] + 0.5 * C_W * g.d2 * kap[l]


def _overflow_error(l: int, L: int, C_W: float, C_b: float, K0: float) -> None:
    raise InputError(f"vertex_recursion: the recursion leaves the float64 range at layer {l + 1} with C_W={C_W:g}, "
                     f"C_b={C_b:g}, K0={K0:g}: at most {l} layers are allowed there, got widths with {L}")


def vertex_recursion(activation, widths: Sequence[int], C_W: float, C_b: float = 0.0, K0: float = 1.0) -> VertexResult:
    """Leading-order 1/n recursion for ``K^{(l)}`` and ``kappa_4^{(l)}`` over layers ``1..len(widths)``.

    ``widths[i]`` = width of hidden layer ``i+1``; ``K0 = G0 = |x|^2/n_0`` (so ``K^{(1)} = C_b + C_W K0``);
    ``activation``: a name or an :class:`Activation`.  Gaussian expectations by :func:`sigprop.theory.gaussian.expect`
    (split at kinks, ~1e-12 relative).
    """
    phi = as_activation(activation, argname="activation")
    w = validate_widths(widths)
    C_W = check_positive(C_W, "C_W")
    C_b = check_nonneg(C_b, "C_b")
    K0 = check_nonneg(K0, "K0")
    if C_b + C_W * K0 <= 0:
        raise InputError("vertex_recursion: K^(1) = C_b + C_W K0 must be > 0 (K0 = 0 needs C_b > 0)")
    if phi.jumps:
        raise InputError(f"vertex_recursion: activation {phi.label} is discontinuous; its chi_par is not defined here")
    L = w.size
    K = np.empty(L)
    kap = np.zeros(L)
    dK = np.zeros(L)
    chi = np.empty(L)
    var = np.empty(L)
    K[0] = C_b + C_W * K0
    for l in range(L):
        try:
            with np.errstate(over="raise", invalid="raise"):
                _vertex_layer(phi, l, L, w, C_W, C_b, K, kap, dK, chi, var)
        except (OverflowError, FloatingPointError, ZeroDivisionError, ValueError):  # float64 range left
            _overflow_error(l, L, C_W, C_b, K0)
        if not all(math.isfinite(float(a[l])) for a in (K, kap, dK, chi, var)) or (
                l + 1 < L and not all(math.isfinite(float(a[l + 1])) for a in (K, kap, dK))):
            _overflow_error(l, L, C_W, C_b, K0)
    V = np.concatenate([[0.0], w[:-1] * kap[1:]])
    return VertexResult(activation=phi.label, widths=w, C_W=C_W, C_b=C_b, K=K, kappa4=kap, V=V,
                        chi_par=chi, var_phi2=var, dK=dK)


def derive_scale_invariant_vertex() -> sp.Expr:
    """Solve the kappa_4 recursion symbolically for scale-invariant phi at criticality.

    Inputs: ``<phi^2>_K = A_2 K``, ``<phi^4>_K = 3 A_4 K^2``, ``C_W = 1/A_2``, ``C_b = 0`` (so ``K`` is constant and
    ``chi_par = C_W A_2 = 1``), equal widths ``n``.  Returns ``V^{(l)} = n kappa_4^{(l)}`` in the symbols
    ``l, A_2, A_4, K``: ``(l - 1)(3 A_4/A_2^2 - 1) K^2``.
    """
    A2, A4, K, nn = sp.symbols("A_2 A_4 K n", positive=True)
    l = sp.Symbol("l", integer=True, positive=True)
    C_W = 1 / A2
    Kvar = sp.Symbol("Kvar", positive=True)
    m2 = A2 * Kvar
    chi = sp.simplify(C_W * sp.diff(m2, Kvar))
    var_phi2 = (3 * A4 * Kvar**2 - m2**2).subs(Kvar, K)
    kappa = sp.Function("kappa")
    rec = kappa(l + 1) - (C_W**2 * var_phi2 / nn + chi**2 * kappa(l))
    sol = sp.rsolve(rec, kappa(l), {kappa(1): 0})
    return sp.factor(sp.simplify(nn * sol))


def scale_invariant_vertex(activation, depth: int, K: float = 1.0) -> np.ndarray:
    """``V^{(l)} = (l-1)(3 A_4/A_2^2 - 1) K^2`` for ``l = 1..depth`` (ReLU: ``5(l-1)K^2``; linear ``2(l-1)K^2``).

    Valid at criticality ``C_W = 1/A_2``, ``C_b = 0``, equal widths; ``activation`` must have ``slopes``.
    """
    phi = as_activation(activation, argname="activation")
    if phi.slopes is None:
        raise InputError(f"scale_invariant_vertex: {phi.label} is not scale-invariant (no slopes)")
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise InputError(f"scale_invariant_vertex: depth must be an integer >= 1, got {depth!r}")
    K = check_positive(K, "K")
    ap, am = phi.slopes
    A2, A4 = (ap**2 + am**2) / 2, (ap**4 + am**4) / 2
    return np.arange(depth) * (3 * A4 / A2**2 - 1) * K**2


def double_critical_point(activation, K_range: tuple[float, float] = (1e-2, 1e2)) -> tuple[float, float, float]:
    """``(C_W, C_b, K*)`` with ``chi_par = chi_perp = 1`` at the fixed point ``K*`` (e.g. GELU: 1.983, 0.173, 3.5616).

    Solves ``d<phi^2>_K/dK = <phi'^2>_K`` for K by Brent's method on the first sign change over a geometric grid
    of ``K_range``, then ``C_W = 1/<phi'^2>_{K*}``, ``C_b = K* - C_W <phi^2>_{K*}`` (ValueError if there is no
    root or ``C_b < 0``).  Not for activations whose only solution is K* = 0 (tanh: C_W = 1, C_b = 0).
    """
    from scipy.optimize import brentq

    phi = as_activation(activation, argname="activation")
    lo, hi = (check_positive(k, "K_range") for k in K_range)
    if not lo < hi:
        raise InputError(f"double_critical_point: K_range must be increasing, got {K_range!r}")

    def dphi2(K):
        return gauss_expect1(lambda u: phi.deriv(u) ** 2, K, phi.kinks)

    def gap(K):
        return gaussian_moments(phi, K).d1 - dphi2(K)

    grid = np.geomspace(lo, hi, 41)
    vals = [gap(float(k)) for k in grid]
    idx = next((i for i in range(len(grid) - 1) if vals[i] == 0 or vals[i] * vals[i + 1] < 0), None)
    if idx is None:
        raise InputError(f"double_critical_point: no K in [{lo:g}, {hi:g}] with chi_par = chi_perp for {phi.label}")
    K = float(brentq(gap, grid[idx], grid[idx + 1], xtol=1e-14, rtol=1e-14))
    C_W = 1.0 / dphi2(K)
    C_b = K - C_W * gaussian_moments(phi, K).m2
    if C_b < -1e-12:
        raise InputError(f"double_critical_point: {phi.label} needs a negative bias variance ({C_b:g})")
    return C_W, max(C_b, 0.0), K
