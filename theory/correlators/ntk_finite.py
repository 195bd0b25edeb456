"""The neural tangent kernel at finite width: its mean with the 1/n correction, ``D``, ``F``, ``A``, ``B``, any P.

Conventions (Roberts, Yaida & Hanin, chapter 8; docs/correlators.md, section 9).  Layer ``l`` (1..L) has
``z^(l) = b^(l) + W^(l) sigma(z^(l-1))``, ``W_ij ~ N(0, C_W^(l)/n_{l-1})``, ``b_i ~ N(0, C_b^(l))``,
``sigma(z^(0)) = x``.  Learning rates: ``lambda_b^(l)`` for every bias of layer l, ``lambda_W^(l)/n_{l-1}`` for
every weight, so the NTK of layer l is

    H^(l)_{i1 i2; a1 a2} = delta_{i1 i2} [lambda_b^(l) + lambda_W^(l) G^(l-1)_{a1 a2}]
                           + sum_{j1 j2} W_{i1 j1} W_{i2 j2} sigma'_{j1 a1} sigma'_{j2 a2} H^(l-1)_{j1 j2; a1 a2},

``G^(l-1) = sigma^T sigma / n_{l-1}`` (``G^(0) = G0 = X X^T / n_0``).  ``lambda = C`` per layer is the NTK
parametrisation, which is what ``simulate(..., backward=True).tangent_gram`` sums (sigprop.theory.tangent).

Statistics at layer l, at leading order (``n = n_{l-1}``):

    E[H_{i1 i2}]                 = delta_{i1 i2} (Theta + dTheta),   dTheta = Theta1 / n,
    E[dH_{i1i2;a1a2} z_i3a3 z_i4a4] = [d12 d34 D_{a1a2a3a4} + d13 d24 F_{a1a3a2a4} + d14 d23 F_{a1a4a2a3}] / n,
    E[dH_{i1i2;a1a2} dH_{i3i4;a3a4}] = [d12 d34 A_{(a1a2)(a3a4)} + d13 d24 B_{a1a3a2a4} + d14 d23 B_{a1a4a2a3}] / n.

The recursions (our derivation, docs/correlators.md section 9): conditional on layer l, Wick's theorem in
``W^(l+1), b^(l+1)`` gives the next layer's conditional moments; in them the same-neuron sums are ``1/n`` times a
single-neuron Gaussian expectation and the cross-neuron terms are expanded in the fluctuations of the conditional
kernels, whose covariances are ``kappa = V/n``, ``d = D/n``, ``a = A/n``, and in ``f = F/n``, ``b = B/n``.
Expectations: :func:`sigprop.theory.gaussian_products.product_expectation`; K-derivatives by Gaussian score
weights (no ``sigma''`` needed); the K-Hessians that enter the mean corrections only, by a Richardson-extrapolated
central difference of the exact score gradient (one-input ``dK`` equals :func:`.vertex_recursion`'s to 1e-12).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sigprop.theory.arguments import real_array
from sigprop.theory.errors import InputError

from ..activations import Activation, as_activation
from .multi_input import pair_index
from .vertex_any_p import (
    LayerExpectations,
    check_continuous,
    check_initial_kernels,
    check_input_gram,
    check_pairs_nondegenerate,
    check_widths,
    derivative_matrix,
    four_point_count,
)

__all__ = ["finite_width_ntk", "FiniteWidthNTK", "MAX_INPUTS"]

#: The most inputs: per layer ``3 (P(P+1)/2)^2`` four-point expectations (P = 6: 1323, 4-D ones ~0.1-5 s each).
MAX_INPUTS = 6


@dataclass(frozen=True)
class FiniteWidthNTK:
    """Leading-order finite-width NTK statistics per layer; index 0 = hidden layer 1, arrays read-only.

    ``K``, ``Theta`` (L, P, P): infinite-width preactivation kernel and NTK; ``dK``, ``dTheta`` (L, P, P): their
    O(1/n) shifts for the given widths, ``K1 = n_{l-1} dK``, ``Theta1 = n_{l-1} dTheta``.  ``V``, ``D``, ``A``
    (L, P, P, P, P) in index order ``(a1 a2)(a3 a4)``; ``F``, ``B`` (L, P, P, P, P) in the book's order
    ``F_{a1 a3 a2 a4}`` (neuron i1 carries ``a1, a3``).  All four are ``n_{l-1}`` times the correlators (module
    docstring) and vanish at layer 1.
    """

    widths: np.ndarray
    K: np.ndarray
    dK: np.ndarray
    V: np.ndarray
    Theta: np.ndarray
    dTheta: np.ndarray
    D: np.ndarray
    F: np.ndarray
    A: np.ndarray
    B: np.ndarray

    @property
    def K1(self) -> np.ndarray:
        """``n_{l-1} dK`` (layer 1: 0)."""
        return self._scaled(self.dK)

    @property
    def Theta1(self) -> np.ndarray:
        """``n_{l-1} dTheta`` (layer 1: 0), the book's ``Theta^{1}`` for equal widths."""
        return self._scaled(self.dTheta)

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros_like(x)
        out[1:] = self.widths[:-1, None, None] * x[1:]
        return out

    def one_neuron_ntk_covariance(self) -> np.ndarray:
        """``n_{l-1} Cov(H_ii;a1a2, H_ii;a3a4) = A_(a1a2)(a3a4) + B_a1a3a2a4 + B_a1a4a2a3`` (one neuron, e.g. a
        network's scalar output), (L, P, P, P, P)."""
        return self.A + self.B.transpose(0, 1, 3, 2, 4) + self.B.transpose(0, 1, 3, 4, 2)

    def one_neuron_ntk_preactivation(self) -> np.ndarray:
        """``n_{l-1} E[dH_ii;a1a2 z_ia3 z_ia4] = D_a1a2a3a4 + F_a1a3a2a4 + F_a1a4a2a3`` (one neuron),
        (L, P, P, P, P)."""
        return self.D + self.F.transpose(0, 1, 3, 2, 4) + self.F.transpose(0, 1, 3, 4, 2)


# --------------------------------------------------------------------------------------------
# arguments
# --------------------------------------------------------------------------------------------
def expectations_per_layer(P: int) -> int:
    """Distinct four-point expectations of one layer: ``<s s s s>`` and ``<s' s' s' s'>`` (multisets of 4 of P
    inputs each) and ``<s' s' s s>`` (a pair times a pair)."""
    npairs = P * (P + 1) // 2
    return 2 * four_point_count(P) + npairs * npairs


def _check_inputs(G0) -> np.ndarray:
    return check_input_gram(G0, "finite_width_ntk", MAX_INPUTS, expectations_per_layer)


def _per_layer(x, L: int, name: str, positive: bool) -> np.ndarray:
    """A scalar or one value per layer (:func:`sigprop.theory.arguments.real_array`), each > 0 or >= 0."""
    v = real_array(x, name, "finite_width_ntk", (0, 1))
    v = np.full(L, float(v)) if v.ndim == 0 else v
    if v.shape != (L,):
        raise InputError(f"finite_width_ntk: {name} must be a number or have one entry per layer ({L}), "
                         f"got shape {v.shape}")
    if np.any(v <= 0) if positive else np.any(v < 0):
        raise InputError(f"finite_width_ntk: {name} must be {'> 0' if positive else '>= 0'} in every layer, "
                         f"got {v.tolist()}")
    return v


# --------------------------------------------------------------------------------------------
# Gaussian expectations at one layer
# --------------------------------------------------------------------------------------------
def _score_directional(phi: Activation, order: int, K: np.ndarray, U: np.ndarray) -> float:
    """``d/dt <phi^(o)(z_0) phi^(o)(z_1)>_{K + tU}`` on a 2x2 (or 1x1) block, by the Gaussian score weight
    ``(z^T K^-1 U K^-1 z - tr K^-1 U) / 2`` (no derivative of phi beyond ``order``)."""
    m = K.shape[0]
    E = LayerExpectations(phi, K)
    idx, orders = ((0, 0), (order, order)) if m == 1 else ((0, 1), (order, order))
    inv = np.linalg.inv(K)
    Q = inv @ U @ inv
    acc = sum(Q[c, d] * E.prod(idx, orders, poly=(c, d)) for c in range(m) for d in range(m))
    return 0.5 * (acc - np.trace(inv @ U) * E.prod(idx, orders))


def _second_directional(phi: Activation, order: int, K: np.ndarray, U: np.ndarray) -> float:
    """``d^2/dt^2 <phi^(o)_0 phi^(o)_1>_{K + tU}``: Richardson-extrapolated central difference of the exact score
    derivative (steps h and h/2: error O(h^4) + rounding / h, about 1e-12 relative at h = 2e-3 K)."""
    norm = np.linalg.norm(U, 2)
    h = min(2e-3 * np.max(np.diag(K)), 0.25 * np.linalg.eigvalsh(K)[0]) / norm  # K +- hU stays PD

    def central(s: float) -> float:
        return (_score_directional(phi, order, K + s * U, U) - _score_directional(phi, order, K - s * U, U)) / (2 * s)

    return (4.0 * central(h / 2) - central(h)) / 3.0


def _hessian_contraction(phi: Activation, order: int, K: np.ndarray, pairs, kappa: np.ndarray) -> np.ndarray:
    """``sum_{(ef),(gh)} d^2 <phi^(o)_a phi^(o)_b>_K / dK_ef dK_gh kappa_(ef)(gh)`` per pair (a, b): the K-Hessian
    lives on the (a, b) block; contracted through the eigenvectors of kappa's block."""
    where = {p: i for i, p in enumerate(pairs)}
    out = np.zeros(len(pairs))
    for p, (a, b) in enumerate(pairs):
        blk = [(a, a)] if a == b else [(a, a), (a, b), (b, b)]
        sel = [where[q] for q in blk]
        kb = kappa[np.ix_(sel, sel)]
        if not np.any(kb):
            continue
        idx = [a] if a == b else [a, b]
        Kb = K[np.ix_(idx, idx)]
        mu, vecs = np.linalg.eigh(0.5 * (kb + kb.T))
        for k in range(len(mu)):
            if mu[k] == 0.0:
                continue
            U = np.zeros_like(Kb)
            for (e, f), u in zip(blk, vecs[:, k]):
                i, j = idx.index(e), idx.index(f)
                U[i, j] = U[j, i] = u
            out[p] += mu[k] * _second_directional(phi, order, Kb, U)
    return out


def _score_gradient(E: LayerExpectations, pairs, order: int) -> np.ndarray:
    """``d<phi^(o)_a phi^(o)_b>_K / dK_ef`` (rows (ab), columns independent entries e <= f), score weights
    ``w_ef = (1 - d_ef/2) (K^-1 z z^T K^-1 - K^-1)_ef`` of the (a, b) block."""
    where = {p: i for i, p in enumerate(pairs)}
    G = np.zeros((len(pairs), len(pairs)))
    for p, (a, b) in enumerate(pairs):
        idx = (a,) if a == b else (a, b)
        inv = np.linalg.inv(E.K[np.ix_(idx, idx)])
        base = E.prod((a, b), (order, order))
        for i, e in enumerate(idx):
            for j in range(i, len(idx)):
                f = idx[j]
                acc = sum(inv[i, c] * inv[j, d] * E.prod((a, b), (order, order), poly=(idx[c], idx[d]))
                          for c in range(len(idx)) for d in range(len(idx)))
                G[p, where[(e, f)]] = (1.0 if i != j else 0.5) * (acc - inv[i, j] * base)
    return G


def _stein_first(E: LayerExpectations, P: int) -> np.ndarray:
    """``T[c, x, y] = <d/dz_c (sigma'(z_x) sigma(z_y))>_K`` by Stein's lemma on the block of ``{x, y}``."""
    T = np.zeros((P, P, P))
    for x in range(P):
        for y in range(P):
            idx = (x,) if x == y else (x, y)
            inv = np.linalg.inv(E.K[np.ix_(idx, idx)])
            moments = [E.prod((x, y), (1, 0), poly=(e,)) for e in idx]
            for i, c in enumerate(idx):
                T[c, x, y] = sum(inv[i, j] * moments[j] for j in range(len(idx)))
    return T


@dataclass
class _Layer:
    """Everything the transition from layer l to l+1 needs at the kernel ``K^(l)``."""

    m0: np.ndarray    # <sigma_a sigma_b>
    chi: np.ndarray   # <sigma'_a sigma'_b>
    Gs: np.ndarray    # d<sigma sigma>/dK        (pairs x pairs)
    Gd: np.ndarray    # d<sigma' sigma'>/dK      (pairs x pairs)
    Css: np.ndarray   # <s s s s> - <s s><s s>   (pairs x pairs)
    Sds: np.ndarray   # <s' s' s s>              (pairs x pairs, NTK pair first)
    Sdd: np.ndarray   # <s' s' s' s'>            (pairs x pairs)
    T: np.ndarray     # <d_c (sigma'_x sigma_y)>  (P, P, P)


def _layer(phi: Activation, K: np.ndarray, pairs) -> _Layer:
    E = LayerExpectations(phi, K)
    P = K.shape[0]
    m0 = np.array([[E.prod((a, b)) for b in range(P)] for a in range(P)])
    chi = np.array([[E.prod((a, b), (1, 1)) for b in range(P)] for a in range(P)])
    n = len(pairs)
    Css, Sds, Sdd = (np.empty((n, n)) for _ in range(3))
    for p, (a, b) in enumerate(pairs):
        for q, (c, d) in enumerate(pairs):
            Sds[p, q] = E.prod((a, b, c, d), (1, 1, 0, 0))
            if q >= p:
                Css[p, q] = Css[q, p] = E.prod((a, b, c, d)) - m0[a, b] * m0[c, d]
                Sdd[p, q] = Sdd[q, p] = E.prod((a, b, c, d), (1, 1, 1, 1))
    return _Layer(m0, chi, derivative_matrix(E, pairs), _score_gradient(E, pairs, 1), Css, Sds, Sdd,
                  _stein_first(E, P))


# --------------------------------------------------------------------------------------------
# the recursion
# --------------------------------------------------------------------------------------------
def _full(X: np.ndarray, pidx: np.ndarray) -> np.ndarray:
    """Pair-indexed (npairs, npairs) -> (P, P, P, P)."""
    return X[pidx[:, :, None, None], pidx[None, None, :, :]]


def _pair_vec(M: np.ndarray, pairs) -> np.ndarray:
    return np.array([M[a, b] for a, b in pairs])


def _sym(v: np.ndarray, pairs, P: int) -> np.ndarray:
    M = np.empty((P, P))
    for x, (a, b) in zip(v, pairs):
        M[a, b] = M[b, a] = x
    return M


def _second_derivative_table(Gd: np.ndarray, pairs, P: int) -> np.ndarray:
    """``U[a, b, c, d] = <d_c d_d (sigma'_a sigma'_b)>_K`` from the gradient: ``dK_cd`` (c != d) or ``2 dK_cc``."""
    where = {p: i for i, p in enumerate(pairs)}
    U = np.zeros((P, P, P, P))
    for a in range(P):
        for b in range(P):
            row = where[(min(a, b), max(a, b))]
            for c in {a, b}:
                for d in {a, b}:
                    col = where[(min(c, d), max(c, d))]
                    U[a, b, c, d] = Gd[row, col] * (2.0 if c == d else 1.0)
    return U


def finite_width_ntk(activation, widths: Sequence[int], C_W, C_b=0.0, lambda_b=None, lambda_W=None,
                     G0=None) -> FiniteWidthNTK:
    """Leading-order 1/n statistics of the NTK and the preactivations: mean shifts, ``V``, ``D``, ``F``, ``A``, ``B``.

    Parameters
    ----------
    activation : str or Activation
        Any continuous activation of the registry (kinks allowed; a jump has no ``sigma'``).
    widths : sequence of int
        ``widths[i]`` = ``n_{i+1}``, the width of layer ``i + 1`` (each >= 1); layer l's statistics carry
        ``1/n_{l-1}``, so the last width never enters (a network's scalar output is a last layer of width 1).
    C_W, C_b : float or sequence of float
        Weight (> 0) and bias (>= 0) variances, one for all layers or one per layer.
    lambda_b, lambda_W : float or sequence of float, optional
        Learning rates (>= 0) of the biases and of ``n_{l-1}`` times the weights of each layer; default
        ``lambda = C`` (the NTK parametrisation, the convention of ``simulate``'s ``tangent_gram``).
    G0 : array_like, shape (P, P), optional
        The input Gram ``X X^T / n_0``, positive definite, ``P <= MAX_INPUTS`` (default ``[[1]]``).

    Returns
    -------
    FiniteWidthNTK
        Per layer: ``K``, ``dK``, ``V``, ``Theta``, ``dTheta``, ``D``, ``F``, ``A``, ``B`` (docstring of the class).

    Raises
    ------
    InputError
        Bad widths (not integers >= 1), variances (``C_W > 0``, ``C_b >= 0``), learning rates (>= 0), or ``G0``
        (not real, finite, symmetric and PD, or P beyond :data:`MAX_INPUTS`: the message says the work it would
        need), a discontinuous activation (``sigma'`` is a delta mass), a first-layer kernel beyond float64, or a
        kernel whose 2x2 block of two inputs becomes degenerate.

    Examples
    --------
    Deep linear network, one input: ``B^(l) = n_{l-1} sum_{l'<l} Theta^(l')^2 / n_{l'}``, no mean shift (zero up to
    the rounding of the numerical K-Hessian):

    >>> r = finite_width_ntk("identity", [8, 8, 8], 1.0, 0.0, 0.0, 1.0)
    >>> r.Theta[:, 0, 0].tolist(), r.B[:, 0, 0, 0, 0].tolist(), bool(abs(r.dTheta).max() < 1e-12)
    ([1.0, 2.0, 3.0], [0.0, 1.0, 5.0], True)

    ReLU: the diagonal of the mean has no 1/n shift (exactly, at any width), the off-diagonal has one:

    >>> r = finite_width_ntk("relu", [64] * 4, 2.0, G0=[[1.0, 0.5], [0.5, 1.0]])
    >>> print(abs(r.Theta1[-1, 0, 0]) < 1e-10, f"{r.Theta1[-1, 0, 1]:.3f}")
    True 2.963
    """
    phi = as_activation(activation, argname="activation")
    w = check_widths(widths, "finite_width_ntk")
    L = w.size
    CW = _per_layer(C_W, L, "C_W", positive=True)
    Cb = _per_layer(C_b, L, "C_b", positive=False)
    lb = Cb.copy() if lambda_b is None else _per_layer(lambda_b, L, "lambda_b", positive=False)
    lw = CW.copy() if lambda_W is None else _per_layer(lambda_W, L, "lambda_W", positive=False)
    G = _check_inputs(G0)
    check_continuous(phi, "finite_width_ntk", "Theta, D, F, A and B")
    P = G.shape[0]
    pairs = pair_index(P)
    npr = len(pairs)
    pidx = np.empty((P, P), dtype=int)
    for i, (a, b) in enumerate(pairs):
        pidx[a, b] = pidx[b, a] = i

    K, Th, dK, dTh = (np.zeros((L, P, P)) for _ in range(4))
    kap, dcov, acov = (np.zeros((L, npr, npr)) for _ in range(3))
    f, bb = np.zeros((L, P, P, P, P)), np.zeros((L, P, P, P, P))
    with np.errstate(over="ignore"):
        K[0] = Cb[0] + CW[0] * G
        Th[0] = lb[0] + lw[0] * G
    check_initial_kernels("finite_width_ntk", **{"C_b + C_W G0": K[0], "lambda_b + lambda_W G0": Th[0]})
    for l in range(L - 1):
        check_pairs_nondegenerate(K[l], l + 1, "finite_width_ntk")
        s = _layer(phi, K[l], pairs)
        n, C, lam_b, lam_w = w[l], CW[l + 1], lb[l + 1], lw[l + 1]
        th, chi = _pair_vec(Th[l], pairs), _pair_vec(s.chi, pairs)
        Sdd_c = s.Sdd - np.outer(chi, chi)
        Sds_c = s.Sds - np.outer(chi, _pair_vec(s.m0, pairs))
        gg = s.Css / n + s.Gs @ kap[l] @ s.Gs.T                                   # Cov(G, G)
        cg = (th[:, None] * (Sds_c / n + s.Gd @ kap[l] @ s.Gs.T)
              + chi[:, None] * (dcov[l] @ s.Gs.T))                                # Cov(C_12, G_34)
        x = chi[:, None] * (dcov[l] @ s.Gd.T) * th[None, :]
        cc = (np.outer(th, th) * (Sdd_c / n + s.Gd @ kap[l] @ s.Gd.T)
              + np.outer(chi, chi) * acov[l] + x + x.T)                           # Cov(C, C)
        K[l + 1] = Cb[l + 1] + C * s.m0
        Th[l + 1] = lam_b + lam_w * s.m0 + C * s.chi * Th[l]
        kap[l + 1] = C**2 * gg
        dcov[l + 1] = C * lam_w * gg + C**2 * cg
        acov[l + 1] = lam_w**2 * gg + lam_w * C * (cg + cg.T) + C**2 * cc
        f[l + 1] = C**2 * (_full(s.Sds, pidx) * Th[l][:, :, None, None] / n
                           + np.einsum("xycd,cxu,dyv->xyuv", f[l], s.T, s.T))
        bb[l + 1] = C**2 * (_full(s.Sdd, pidx) * Th[l][:, :, None, None] * Th[l][None, None, :, :] / n
                            + s.chi[:, None, :, None] * s.chi[None, :, None, :] * bb[l])
        # mean shifts
        dk = _pair_vec(dK[l], pairs)
        dK[l + 1] = _sym(C * (s.Gs @ dk + 0.5 * _hessian_contraction(phi, 0, K[l], pairs, kap[l])), pairs, P)
        dchi = _sym(s.Gd @ dk + 0.5 * _hessian_contraction(phi, 1, K[l], pairs, kap[l]), pairs, P)
        cov_term = _sym(np.einsum("pe,pe->p", dcov[l], s.Gd), pairs, P)
        F_term = np.einsum("abcd,abcd->ab", f[l], _second_derivative_table(s.Gd, pairs, P))
        dTh[l + 1] = (lam_w / C) * dK[l + 1] + C * (s.chi * dTh[l] + Th[l] * dchi + cov_term + F_term)
        if not all(np.all(np.isfinite(a)) for a in (K[l + 1], Th[l + 1], acov[l + 1], bb[l + 1], dTh[l + 1])):
            raise InputError(f"finite_width_ntk: the recursion leaves the float64 range at layer {l + 2}")
    scale = np.concatenate([[0.0], w[:-1]])[:, None, None, None, None]
    V, D, A = (scale * _full(x.transpose(1, 2, 0), pidx).transpose(4, 0, 1, 2, 3) for x in (kap, dcov, acov))
    F = scale * f.transpose(0, 1, 3, 2, 4)
    B = scale * bb.transpose(0, 1, 3, 2, 4)
    arrays = dict(K=K, dK=dK, V=V, Theta=Th, dTheta=dTh, D=D, F=F, A=A, B=B)
    for a in arrays.values():
        a.setflags(write=False)
    w.setflags(write=False)
    return FiniteWidthNTK(widths=w, **arrays)
