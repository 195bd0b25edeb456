"""Multi-input four-point vertex at leading order in 1/n (P = 1 or 2 inputs).

Exact starting point: given layer l, the rows ``z_i^{(l+1)}`` (one P-vector per neuron) are i.i.d.
``N(0, Sigma^{(l+1)})``,
``Sigma^{(l+1)}_ab = C_b + (C_W/n_l) sum_j phi(z_ja) phi(z_jb)``.  The cross-neuron four-point cumulant

    kappa^{(l)}_{(ab)(cd)} := E[z_ia z_ib z_kc z_kd] - E[z_a z_b] E[z_c z_d]   (i != k)   = Cov(Sigma_ab, Sigma_cd)

(``V^{(l)}_{(ab)(cd)} = n_{l-1} kappa^{(l)}_{(ab)(cd)}``; for one input it is kappa_4) obeys, at leading order,

    kappa^{(l+1)}_{(ab)(cd)} = (C_W^2/n_l) [<phi_a phi_b phi_c phi_d>_K - <phi_a phi_b>_K <phi_c phi_d>_K]
                             + C_W^2 sum_{(ef),(gh)} D_{(ab),(ef)} D_{(cd),(gh)} kappa^{(l)}_{(ef)(gh)},

with ``D_{(ab),(ef)} = d<phi_a phi_b>_K / dK_ef`` (K_ef, e <= f, the independent entries), because
``Cov(f(z_j), g(z_k))_{j != k} = Cov(<f>_Sigma, <g>_Sigma)`` and Sigma fluctuates by O(n^{-1/2}) around K.
The derivative is a Gaussian expectation against the score ``w_ef(z) = d log N(z; 0, K)/dK_ef``, which SymPy
derives here (:func:`derive_score_weights`): ``w_ef = (1 - delta_ef/2) (K^{-1} z z^T K^{-1} - K^{-1})_ef`` --
the coupling through ``<phi_a phi_b (z_c z_d - K_cd)>_K`` and the inverse kernel.  ``D_{(ab),(ef)} = 0`` unless
``{e, f}`` is inside ``{a, b}`` (the expectation depends only on the (a, b) marginal).  Checked against
simulation for P = 2 (tests/test_vertex.py, tests/test_correlators_sim.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import sympy as sp

from sigprop.theory.errors import InputError

from ..activations import as_activation
from ..gaussian import expect2
from .deep_linear import check_positive, validate_widths
from .vertex import check_nonneg, gauss_expect1, gaussian_moments

__all__ = ["derive_score_weights", "MultiVertexResult", "multi_input_vertex_recursion", "pair_index"]


def pair_index(P: int) -> list[tuple[int, int]]:
    """Input pairs ``(a, b)`` with ``a <= b``, the index order of ``kappa``/``V`` matrices."""
    return [(a, b) for a in range(P) for b in range(a, P)]


@lru_cache(maxsize=None)
def derive_score_weights(P: int = 2) -> dict:
    """SymPy: ``{(e, f): d log N(z; 0, K) / dK_ef}`` for the independent entries ``K_ef`` (e <= f).

    Symbols ``z0..z{P-1}`` and ``K_ef`` (``K_ef = K_fe``).  Each result is verified against
    ``(1 - delta_ef/2) (K^{-1} z z^T K^{-1} - K^{-1})_ef`` (AssertionError otherwise).
    """
    if isinstance(P, bool) or not isinstance(P, int) or not 1 <= P <= 3:
        raise InputError(f"derive_score_weights: P must be 1, 2 or 3, got {P!r}")
    z = sp.Matrix(sp.symbols(f"z0:{P}", real=True))
    ks = {(e, f): sp.Symbol(f"K_{e}{f}", real=True) for e, f in pair_index(P)}
    K = sp.Matrix(P, P, lambda a, b: ks[(min(a, b), max(a, b))])
    logp = -sp.Rational(1, 2) * (z.T * K.inv() * z)[0, 0] - sp.Rational(1, 2) * sp.log(K.det())
    Kinv = K.inv()
    target = Kinv * z * z.T * Kinv - Kinv
    out = {}
    for (e, f), sym in ks.items():
        w = sp.simplify(sp.diff(logp, sym))
        expected = target[e, f] * (sp.Rational(1, 2) if e == f else 1)
        if sp.simplify(w - expected) != 0:
            raise AssertionError(f"score weight for K_{e}{f} does not match the inverse-kernel form")
        out[(e, f)] = w
    return out


@lru_cache(maxsize=None)
def _score_fns(P: int):
    ws = derive_score_weights(P)
    zs = sp.symbols(f"z0:{P}", real=True)
    ks = [sp.Symbol(f"K_{e}{f}", real=True) for e, f in pair_index(P)]
    return {k: sp.lambdify((*zs, *ks), w, "numpy") for k, w in ws.items()}


@dataclass(frozen=True)
class MultiVertexResult:
    """Per-layer results (index 0 = hidden layer 1): ``K`` (L, P, P); ``kappa`` (L, np, np) over :func:`pair_index`
    pairs (leading order, ``kappa[0] = 0``); ``V = n_{l-1} kappa`` (``V[0] = 0``)."""

    pairs: list
    widths: np.ndarray
    K: np.ndarray
    kappa: np.ndarray
    V: np.ndarray


def _scalar_fn(phi):
    """A fast scalar phi: the compiled numba scalar of built-ins, else the NumPy function on a float."""
    if phi.scalar is not None:
        return phi.scalar
    fn = phi.fn
    return lambda x: float(fn(np.float64(x)))


_R_PANELS = (0.0, 1.5, 3.0, 4.5, 6.0, 8.0, 10.5, 14.0, 20.0, 28.0, 38.0)
_GL_R = np.polynomial.legendre.leggauss(32)
_GL_T = np.polynomial.legendre.leggauss(48)


def expect2_polar(f, K: np.ndarray) -> float:
    """``E[f(u_a, u_b)]``, ``(u_a, u_b) ~ N(0, K)``, for ``f`` vectorised and smooth away from the axes ``u = 0``.

    With ``u_a = s_a x``, ``u_b = s_b (rho x + sqrt(1-rho^2) y)`` and ``(x, y) = r (cos t, sin t)`` the kink lines
    ``u_a = 0``, ``u_b = 0`` are rays, so Gauss-Legendre in ``t`` on the sectors between them and in ``r`` on panels
    of [0, 38] (weight ``r e^{-r^2/2} / 2 pi``) converge spectrally: ~1e-13 for the activations used here.
    Only for kinks at 0 (all built-in activations); see :func:`sigprop.theory.gaussian.expect2` otherwise.
    """
    sa, sb = math.sqrt(K[0, 0]), math.sqrt(K[1, 1])
    rho = K[0, 1] / (sa * sb)
    c = math.sqrt(max(1.0 - rho * rho, 0.0))
    a0 = math.atan2(-rho, c) % (2 * math.pi)
    cuts = sorted({0.0, 0.5 * math.pi, 1.5 * math.pi, a0, (a0 + math.pi) % (2 * math.pi), 2 * math.pi})
    xt, wt = _GL_T
    xr, wr = _GL_R
    ts, tw = [], []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        if hi - lo > 1e-15:
            ts.append(0.5 * (hi - lo) * xt + 0.5 * (hi + lo))
            tw.append(0.5 * (hi - lo) * wt)
    rs, rw = [], []
    for lo, hi in zip(_R_PANELS[:-1], _R_PANELS[1:]):
        rs.append(0.5 * (hi - lo) * xr + 0.5 * (hi + lo))
        rw.append(0.5 * (hi - lo) * wr)
    t, wt_ = np.concatenate(ts), np.concatenate(tw)
    r, wr_ = np.concatenate(rs), np.concatenate(rw)
    x = r[:, None] * np.cos(t)[None, :]
    y = r[:, None] * np.sin(t)[None, :]
    ua = sa * x
    ub = sb * (rho * x + c * y)
    w = (wr_ * r * np.exp(-0.5 * r * r))[:, None] * wt_[None, :] / (2 * math.pi)
    return float(np.sum(w * f(ua, ub)))


def _layer_terms(phi, K: np.ndarray, C_W: float):
    """Four-point covariance matrix C and derivative matrix D at kernel K (P <= 2)."""
    P = K.shape[0]
    pairs = pair_index(P)
    kinks = list(phi.kinks)
    ph = _scalar_fn(phi)

    polar = all(k == 0.0 for k in kinks)
    fv = phi.fn

    def e2(g):
        """E[g(z_0, z_1)] where g is built from phi (scalar) -- or, when ``polar``, vectorised through ``fv``."""
        if polar:
            return expect2_polar(lambda x, y: g(x, y, fv), K)
        return expect2(lambda x, y: g(x, y, ph), K, kinks, epsabs=1e-11, epsrel=1e-9)

    # moments <prod phi_{a}> for multisets of inputs
    @lru_cache(maxsize=None)
    def mom(idx: tuple) -> float:
        cnt = [idx.count(a) for a in range(P)]
        if P == 1 or cnt[1] == 0 or cnt[0] == 0:
            a = 0 if (P == 1 or cnt[1] == 0) else 1
            return gauss_expect1(lambda u: fv(u) ** cnt[a], K[a, a], kinks)
        return e2(lambda x, y, p: p(x) ** cnt[0] * p(y) ** cnt[1])

    npairs = len(pairs)
    C = np.empty((npairs, npairs))
    for p, (a, b) in enumerate(pairs):
        for q, (c, d) in enumerate(pairs):
            if q < p:
                C[p, q] = C[q, p]
                continue
            C[p, q] = mom(tuple(sorted((a, b, c, d)))) - mom(tuple(sorted((a, b)))) * mom(tuple(sorted((c, d))))
    D = np.zeros((npairs, npairs))
    score = _score_fns(P)
    kvals = [K[e, f] for e, f in pairs]
    for p, (a, b) in enumerate(pairs):
        for r, (e, f) in enumerate(pairs):
            if not {e, f} <= {a, b}:
                continue  # <phi_a phi_b> depends only on the (a, b) marginal of K
            if a == b:  # then e == f == a: d<phi^2>/dK = (2K)^-1 E[phi(sqrt K x)^2 (x^2 - 1)]
                D[p, r] = gaussian_moments(phi, K[a, a]).d1
            else:
                w = score[(e, f)]
                D[p, r] = e2(lambda x, y, f: f(x) * f(y) * w(x, y, *kvals))
    kernel = np.empty((P, P))
    for a in range(P):
        for b in range(a, P):
            kernel[a, b] = kernel[b, a] = mom(tuple(sorted((a, b))))
    return C, D, kernel


def multi_input_vertex_recursion(activation, widths: Sequence[int], C_W: float, C_b: float = 0.0,
                                 G0=None) -> MultiVertexResult:
    """Leading-order recursion of ``K^{(l)}`` and ``kappa^{(l)}_{(ab)(cd)}`` for P = 1 or 2 inputs.

    ``G0``: the (P, P) input Gram ``X X^T / n_0`` (default: ``[[1]]``); ``K^{(1)} = C_b + C_W G0``.  For P = 2 the
    kernel must stay non-degenerate (|correlation| < 1) because the score weights use ``K^{-1}``.
    """
    phi = as_activation(activation, argname="activation")
    w = validate_widths(widths)
    C_W = check_positive(C_W, "C_W")
    C_b = check_nonneg(C_b, "C_b")
    G = np.array([[1.0]]) if G0 is None else np.asarray(G0, dtype=float)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] not in (1, 2):
        raise InputError(f"multi_input_vertex_recursion: G0 must be a 1x1 or 2x2 matrix, got shape {G.shape}")
    if not np.all(np.isfinite(G)) or not np.allclose(G, G.T) or np.any(np.linalg.eigvalsh(G) <= 0):
        raise InputError("multi_input_vertex_recursion: G0 must be symmetric positive definite")
    P = G.shape[0]
    L = w.size
    pairs = pair_index(P)
    K = np.empty((L, P, P))
    kap = np.zeros((L, len(pairs), len(pairs)))
    K[0] = C_b + C_W * G
    for l in range(L - 1):
        if P == 2:
            rho = K[l, 0, 1] / math.sqrt(K[l, 0, 0] * K[l, 1, 1])
            if not abs(rho) < 1 - 1e-9:
                raise InputError(f"multi_input_vertex_recursion: kernel became degenerate at layer {l + 1} "
                                 f"(rho={rho!r})")
        C, D, mean = _layer_terms(phi, K[l], C_W)
        K[l + 1] = C_b + C_W * mean
        kap[l + 1] = C_W**2 * C / w[l] + C_W**2 * D @ kap[l] @ D.T
    V = np.concatenate([np.zeros((1, len(pairs), len(pairs))), w[:-1, None, None] * kap[1:]])
    return MultiVertexResult(pairs=pairs, widths=w, K=K, kappa=kap, V=V)
